"""Writes for imports from other bots: commands keyed by where they came from, balances by member.

Each returns what it did ("imported", "updated", "unchanged"), so that running an import
again changes nothing and says so; with ``dry_run`` it only says what it would do.
"""

from __future__ import annotations

from django.db import transaction
from django.db.models import Sum
from django.utils import timezone

from commands.errors import CommandExists, CookieError
from commands.models import CommandAlias, CookieLedger, CustomCommand, LedgerReason
from commands.services.cookies import MAX_BALANCE, _apply_delta
from commands.services.custom_commands import (
    BUILTIN_NAMES,
    _check_fields,
    command_create,
    command_name_clean,
    command_update,
)
from config.numbers import is_int

IMPORTED, UPDATED, UNCHANGED = "imported", "updated", "unchanged"
_MAX_SUFFIX = 999


def command_import_name(*, guild_id: int, wanted: str, reserved: set[str]) -> str:
    """The first of ``wanted``, ``wanted-2``, ``wanted-3``… that is valid and free (not in ``reserved`` either)."""
    for n in range(1, _MAX_SUFFIX + 1):
        suffix = f"-{n}" if n > 1 else ""
        name = wanted[: 32 - len(suffix)] + suffix
        if name in reserved or name in BUILTIN_NAMES:
            continue
        taken = (
            CustomCommand.objects.filter(guild_id=guild_id, name=name).exists()
            or CommandAlias.objects.filter(guild_id=guild_id, name=name).exists()
        )
        if not taken:
            return command_name_clean(name)
    raise CommandExists(f"No free name like `{wanted}`.")


def command_import(
    *,
    guild_id: int,
    origin: str,
    name: str,
    template: str,
    enabled: bool,
    note: str,
    source: str,
    dry_run: bool = False,
) -> tuple[str, CustomCommand | None]:
    """Create the command imported from ``origin``, or bring it up to date when ``source`` changed.

    ``origin`` (``praetbot:<original name>``) is the key: a command imported before is
    found by it whatever it was renamed to, and left alone while its source is the same.
    """
    _check_fields(template=template, enabled=enabled, note=note)
    existing = CustomCommand.objects.filter(guild_id=guild_id, imported_from=origin).first()
    if existing is not None and existing.imported_source == source:
        return UNCHANGED, existing
    if dry_run:
        return (UPDATED if existing else IMPORTED), existing
    with transaction.atomic():
        if existing is None:
            command = command_create(guild_id=guild_id, name=name, template=template, author_id=None, enabled=enabled, note=note)
            outcome = IMPORTED
        else:
            command = command_update(guild_id=guild_id, name=existing.name, template=template, enabled=enabled, note=note)
            outcome = UPDATED
        CustomCommand.objects.filter(pk=command.pk).update(imported_from=origin, imported_source=source)
    return outcome, command


def cookie_import(*, guild_id: int, member_id: int, balance: int, dry_run: bool = False) -> str:
    """Make the cookies imported for a member add up to ``balance``, with one ledger row for the difference.

    What the member got here since (gives, takes) stays: only the imported part moves,
    so a second run with the same count writes nothing.
    """
    if not is_int(member_id, minimum=1, maximum=2**63 - 1):
        raise CookieError("A member is a Discord id.")
    if not is_int(balance, minimum=-MAX_BALANCE, maximum=MAX_BALANCE):
        raise CookieError(f"A cookie count is a whole number up to {MAX_BALANCE:,}.")
    with transaction.atomic():
        imported = CookieLedger.objects.filter(guild_id=guild_id, receiver_id=member_id, reason=LedgerReason.IMPORT)
        before = imported.aggregate(total=Sum("delta"))["total"]
        delta = balance - (before or 0)
        if delta == 0:
            return UNCHANGED
        outcome = IMPORTED if before is None else UPDATED
        if dry_run:
            return outcome
        now = timezone.now()
        _apply_delta(guild_id=guild_id, member_id=member_id, delta=delta, allow_negative=True, now=now)
        CookieLedger.objects.create(
            guild_id=guild_id, giver_id=None, receiver_id=member_id, delta=delta, reason=LedgerReason.IMPORT, created_at=now
        )
    return outcome
