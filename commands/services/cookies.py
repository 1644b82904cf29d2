"""Cookies: members give (``++``) and take (``--``) them; admins set and reset counts.

Every change writes a ledger row and moves the balance with an atomic increment, in one
transaction. Changes by one giver are serialized (an advisory lock on PostgreSQL; SQLite
serializes writers already), so the pair cooldown and the daily cap hold under races.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from datetime import datetime, timedelta

from django.db import IntegrityError, transaction
from django.db.models import F
from django.utils import timezone

from commands.errors import CookieError, CookieOnCooldown
from commands.models import CookieBalance, CookieLedger, CookieRole, LedgerReason
from commands.notify import cookie_roles_sync_later
from commands.services.cookie_roles import CookieRolePlan, cookie_role_plan_for
from commands.services.guild_settings import guild_settings_get
from commands.services.toplists import cookie_toplists_record
from config.database import lock_for_transaction, retry_transient
from config.numbers import is_int
from guilds.services.log import by, log_record

MAX_BALANCE = 10**15
# The sign follows the mention on the same line: spaces between are fine, a line break is not
# (`thanks <@id>\n-- Bob` is a signature, not a take). The breaks are those str.splitlines() knows.
_SAME_LINE_SPACE = r"[^\S\n\r\v\f\x1c\x1d\x1e\x85\u2028\u2029]*"
_MENTION_CHANGE = re.compile(r"<@!?([0-9]{1,20})>" + _SAME_LINE_SPACE + r"(\+\+|--)")
# Thanks are gives said in words: they share the pair cooldown and the daily cap.
_MEMBER_REASONS = (LedgerReason.GIVE, LedgerReason.TAKE, LedgerReason.THANKS)


@dataclass(frozen=True)
class CookieChange:
    receiver_id: int
    delta: int
    balance: int
    roles: CookieRolePlan | None = None  # None when the guild has no cookie roles


def cookie_mentions_parse(content: str, cap: int) -> list[tuple[int, int]]:
    """``(member_id, +1 or -1)`` for each mention followed by ``++``/``--``, first per member, at most ``cap``."""
    if "<@" not in content:
        return []
    found: list[tuple[int, int]] = []
    seen: set[int] = set()
    for match in _MENTION_CHANGE.finditer(content):
        member_id = int(match.group(1))
        if member_id in seen or not 0 < member_id < 2**63:  # Discord ids are 64-bit
            continue
        seen.add(member_id)
        found.append((member_id, 1 if match.group(2) == "++" else -1))
        if len(found) >= cap:
            break
    return found


def _apply_delta(*, guild_id: int, member_id: int, delta: int, allow_negative: bool, now: datetime) -> int | None:
    """Move a balance by ``delta`` atomically; None when it would go below zero and may not."""
    rows = CookieBalance.objects.filter(guild_id=guild_id, member_id=member_id)
    if delta < 0 and not allow_negative:
        rows = rows.filter(balance__gte=-delta)
    if rows.update(balance=F("balance") + delta, updated_at=now):
        return CookieBalance.objects.filter(guild_id=guild_id, member_id=member_id).values_list("balance", flat=True).get()
    if CookieBalance.objects.filter(guild_id=guild_id, member_id=member_id).exists():
        # The balance is too low, or another giver created the row after the update looked
        # (READ COMMITTED on PostgreSQL); the row is visible now, so one more update tells which.
        if rows.update(balance=F("balance") + delta, updated_at=now):
            return CookieBalance.objects.filter(guild_id=guild_id, member_id=member_id).values_list("balance", flat=True).get()
        return None
    if delta < 0 and not allow_negative:
        return None
    try:
        with transaction.atomic():
            CookieBalance.objects.create(guild_id=guild_id, member_id=member_id, balance=delta)
        return delta
    except IntegrityError:
        # Another giver created the row first; the increment now finds it.
        return _apply_delta(guild_id=guild_id, member_id=member_id, delta=delta, allow_negative=allow_negative, now=now)


@retry_transient()
def cookie_give(
    *,
    guild_id: int,
    giver_id: int,
    receiver_id: int,
    delta: int = 1,
    receiver_is_bot: bool = False,
    message_id: int | None = None,
    now: datetime | None = None,
    thanks: bool = False,
) -> CookieChange:
    """Give (delta=+1) or take (delta=-1) one cookie, under the guild's rules; ``thanks``: a give said in words."""
    if not is_int(delta) or delta not in (1, -1) or (thanks and delta != 1):
        raise CookieError("Cookies go one at a time: `++` gives one, `--` takes one.")
    if giver_id == receiver_id:
        raise CookieError("You can't give yourself cookies." if delta > 0 else "You can't take your own cookies.")
    if receiver_is_bot:
        raise CookieError("Bots don't eat cookies.")
    rules = guild_settings_get(guild_id)
    now = now or timezone.now()
    with transaction.atomic():
        lock_for_transaction("cookie-giver", guild_id, giver_id)
        mine = CookieLedger.objects.filter(guild_id=guild_id, giver_id=giver_id, reason__in=_MEMBER_REASONS)
        if rules.cookie_pair_cooldown_seconds:
            last = mine.filter(receiver_id=receiver_id).order_by("-created_at").values_list("created_at", flat=True).first()
            wait = (last + timedelta(seconds=rules.cookie_pair_cooldown_seconds) - now).total_seconds() if last else 0
            if wait > 0:
                raise CookieOnCooldown(f"Slow down: you can change <@{receiver_id}>'s cookies again in {max(1, round(wait))}s.")
        if rules.cookie_daily_cap:
            cap = rules.cookie_daily_cap
            if mine.filter(created_at__gt=now - timedelta(days=1))[:cap].count() >= cap:
                raise CookieError(f"You've used all {cap} of your cookie changes for the last 24 hours.")
        balance = _apply_delta(
            guild_id=guild_id, member_id=receiver_id, delta=delta, allow_negative=rules.cookie_allow_negative, now=now
        )
        if balance is None:
            raise CookieError(f"<@{receiver_id}> has no cookies to take.")
        CookieLedger.objects.create(
            guild_id=guild_id,
            giver_id=giver_id,
            receiver_id=receiver_id,
            delta=delta,
            reason=LedgerReason.THANKS if thanks else LedgerReason.GIVE if delta > 0 else LedgerReason.TAKE,
            message_id=message_id,
            created_at=now,
        )
        cookie_toplists_record(guild_id=guild_id, member_id=receiver_id, delta=delta, at=now)
        roles = cookie_role_plan_for(guild_id=guild_id, balance=balance, keep_all=rules.cookie_roles_keep_all)
    return CookieChange(receiver_id=receiver_id, delta=delta, balance=balance, roles=roles)


@retry_transient()
def cookie_set(*, guild_id: int, member_id: int, balance: int, actor_id: int | None) -> CookieChange:
    """Set a member's count (admins); the ledger records the difference."""
    if not is_int(balance, minimum=-MAX_BALANCE, maximum=MAX_BALANCE):
        raise CookieError(f"A cookie count is a whole number up to {MAX_BALANCE:,}.")
    rules = guild_settings_get(guild_id)
    if balance < 0 and not rules.cookie_allow_negative:
        raise CookieError("This server doesn't allow negative cookie counts.")
    now = timezone.now()
    with transaction.atomic():
        row, _ = CookieBalance.objects.select_for_update().get_or_create(guild_id=guild_id, member_id=member_id)
        delta = balance - row.balance
        row.balance = balance
        row.save(update_fields=["balance", "updated_at"])
        if delta:
            CookieLedger.objects.create(
                guild_id=guild_id,
                giver_id=actor_id,
                receiver_id=member_id,
                delta=delta,
                reason=LedgerReason.ADMIN_SET,
                created_at=now,
            )
            text = f"<@{member_id}>'s cookies set to {balance:,} (was {balance - delta:,}){by(actor_id)}"
            log_record(guild_id=guild_id, kind="cookie.set", text=text, actor_id=actor_id, member_id=member_id)
        roles = cookie_role_plan_for(guild_id=guild_id, balance=balance, keep_all=rules.cookie_roles_keep_all)
    return CookieChange(receiver_id=member_id, delta=delta, balance=balance, roles=roles)


@retry_transient()
def cookie_reset(
    *, guild_id: int, actor_id: int | None, member_id: int | None = None, batch: int = 1000, sync_roles_later: bool = False
) -> int:
    """Set one member's count, or everyone's in the guild, to zero; return how many changed.

    ``sync_roles_later``: queue the worker to take the cookie roles of the members whose count
    reached one (the bot does it itself for one member reset from chat).
    """
    now = timezone.now()
    changed = 0
    lowest = CookieRole.objects.filter(guild_id=guild_id).order_by("threshold").values_list("threshold", flat=True).first()
    holders: list[int] = []
    while True:
        with transaction.atomic():
            rows = CookieBalance.objects.select_for_update().filter(guild_id=guild_id).exclude(balance=0)
            if member_id is not None:
                rows = rows.filter(member_id=member_id)
            chunk = list(rows.order_by("pk")[:batch])
            if not chunk:
                if sync_roles_later and holders:
                    cookie_roles_sync_later(guild_id=guild_id, member_ids=holders)
                return changed
            if lowest is not None:
                holders.extend(row.member_id for row in chunk if row.balance >= lowest)
            CookieLedger.objects.bulk_create(
                CookieLedger(
                    guild_id=guild_id,
                    giver_id=actor_id,
                    receiver_id=row.member_id,
                    delta=-row.balance,
                    reason=LedgerReason.ADMIN_RESET,
                    created_at=now,
                )
                for row in chunk
            )
            CookieBalance.objects.filter(pk__in=[row.pk for row in chunk]).update(balance=0, updated_at=now)
            changed += len(chunk)
            if member_id is not None:
                text = f"<@{member_id}>'s cookies reset to 0 (was {chunk[0].balance:,}){by(actor_id)}"
            else:
                text = f"Cookies of {len(chunk):,} member(s) reset to 0{by(actor_id)}"
            log_record(guild_id=guild_id, kind="cookie.reset", text=text, actor_id=actor_id, member_id=member_id)
