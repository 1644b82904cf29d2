"""Using custom commands: claiming a cooldown, and recording the uses the bots count in memory."""

from __future__ import annotations

from datetime import datetime, timedelta

from django.db import IntegrityError, transaction
from django.db.models import F
from django.utils import timezone

from commands.errors import CustomCommandCooling
from commands.models import CommandCooldown, CooldownScope, CustomCommand
from config.database import retry_transient
from config.numbers import is_int

PRUNE_BATCH = 1000


def _scope_id(scope: str, member_id: int, channel_id: int) -> int:
    """Whose cooldown it is: the member's, the channel's, or (0) the whole guild's."""
    if scope == CooldownScope.MEMBER:
        return member_id
    return channel_id if scope == CooldownScope.CHANNEL else 0


@retry_transient()
def command_cooldown_take(
    *,
    command_pk: int,
    name: str,
    seconds: int,
    scope: str,
    member_id: int,
    channel_id: int,
    now: datetime | None = None,
) -> None:
    """Start the command's cooldown for this caller, or raise CustomCommandCooling if it is running.

    One row per (command, scope, caller), claimed by a conditional UPDATE (the row's time
    is up) or an INSERT (no row yet): of any number of processes racing, exactly one
    claims it; the others see the row the winner wrote and are refused.
    """
    if not seconds:
        return
    now = now or timezone.now()
    caller = {"command_id": command_pk, "scope": scope, "scope_id": _scope_id(scope, member_id, channel_id)}
    rows = CommandCooldown.objects.filter(**caller)
    with transaction.atomic():
        if rows.filter(until__lte=now).update(until=now + timedelta(seconds=seconds)):
            return
        try:
            with transaction.atomic():
                CommandCooldown.objects.create(**caller, until=now + timedelta(seconds=seconds))
            return
        except IntegrityError:
            pass  # another process holds the row (or the command was just deleted)
        until = rows.values_list("until", flat=True).first()
    if until is None or until <= now:
        return  # the command is gone, or its row was pruned as it ran out
    wait = max(1, round((until - now).total_seconds()))
    raise CustomCommandCooling(f"`{name}` is cooling down; try again in {wait}s.", retry_after=wait)


@retry_transient()
def command_uses_record(*, counts: dict[int, int], at: datetime) -> int:
    """Add the uses counted in memory since the last flush (``{command pk: uses}``); return the total.

    Each command's count moves by an atomic increment, so flushes from several bot
    processes add up; a command deleted meanwhile is skipped.
    """
    if any(not is_int(pk, minimum=1) or not is_int(n, minimum=0) for pk, n in counts.items()):
        raise ValueError("counts maps command primary keys to numbers of uses")
    total = 0
    with transaction.atomic():
        for pk, uses in sorted(counts.items()):  # one order everywhere: no deadlocks between flushes
            if uses and CustomCommand.objects.filter(pk=pk).update(usage_count=F("usage_count") + uses, last_used_at=at):
                total += uses
    return total


@retry_transient()
def command_cooldowns_prune(*, now: datetime | None = None, batch: int = PRUNE_BATCH) -> int:
    """Delete up to ``batch`` cooldown rows that have run out; return how many went."""
    now = now or timezone.now()
    with transaction.atomic():
        expired = list(CommandCooldown.objects.filter(until__lte=now).order_by("until").values_list("pk", flat=True)[:batch])
        deleted, _ = CommandCooldown.objects.filter(pk__in=expired, until__lte=now).delete()
    return deleted
