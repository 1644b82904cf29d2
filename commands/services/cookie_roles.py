"""Cookie roles: a role a member holds while their balance is at or above its threshold.

Which roles a member should hold is a pure function of their balance, the guild's
thresholds and its mode (keep every role earned, or only the highest):
``cookie_roles_wanted``. The services here only keep the thresholds; the bot (chat
changes) and the worker (web and API changes) make Discord match a member's plan, and a
change of the thresholds queues one guild-wide sync (``commands.notify.cookie_roles_resync_later``)
for the members who already qualify.
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from dataclasses import dataclass

from django.db import transaction

from commands.errors import CookieRoleInvalid, CookieRoleMissing
from commands.models import CookieRole
from commands.notify import cookie_roles_resync_later
from config.database import retry_transient
from config.numbers import is_int

MAX_COOKIE_ROLES = 25
MAX_THRESHOLD = 10**15


@dataclass(frozen=True)
class CookieRolePlan:
    """The cookie roles a member should hold (``wanted``) out of all the guild's (``managed``)."""

    balance: int
    wanted: frozenset[int]
    managed: frozenset[int]

    def changes(self, held: Iterable[int] | None) -> tuple[set[int], set[int]]:
        """``(to add, to remove)`` given the roles the member holds (None: unknown, so every managed one is set)."""
        if held is None:
            return set(self.wanted), set(self.managed - self.wanted)
        holding = set(held)
        return set(self.wanted - holding), set((self.managed - self.wanted) & holding)


def cookie_roles_wanted(balance: int, thresholds: Sequence[tuple[int, int]], keep_all: bool) -> frozenset[int]:
    """The roles of ``(threshold, role id)`` pairs that ``balance`` reaches; only the highest unless ``keep_all``."""
    reached = [(threshold, role_id) for threshold, role_id in thresholds if balance >= threshold]
    if not reached:
        return frozenset()
    if keep_all:
        return frozenset(role_id for _, role_id in reached)
    top = max(threshold for threshold, _ in reached)
    return frozenset(role_id for threshold, role_id in reached if threshold == top)


def cookie_role_plan_for(*, guild_id: int, balance: int, keep_all: bool) -> CookieRolePlan | None:
    """The plan for ``balance`` in the guild (one indexed read), or None when the guild has no cookie roles."""
    thresholds = list(CookieRole.objects.filter(guild_id=guild_id).values_list("threshold", "role_id"))
    if not thresholds:
        return None
    return CookieRolePlan(
        balance=balance,
        wanted=cookie_roles_wanted(balance, thresholds, keep_all),
        managed=frozenset(role_id for _, role_id in thresholds),
    )


@retry_transient()
def cookie_role_add(*, guild_id: int, threshold: int, role_id: int, actor_id: int | None) -> tuple[CookieRole, bool]:
    """Give ``role_id`` at ``threshold`` cookies (a role already there moves to the new threshold); ``(row, created)``."""
    if not is_int(threshold, minimum=1, maximum=MAX_THRESHOLD):
        raise CookieRoleInvalid(f"A cookie role's threshold is a whole number from 1 to {MAX_THRESHOLD:,}.")
    if not is_int(role_id, minimum=1, maximum=2**63 - 1) or role_id == guild_id:
        raise CookieRoleInvalid("That is not a role members can be given.")
    with transaction.atomic():
        rows = CookieRole.objects.select_for_update().filter(guild_id=guild_id)
        existing = {row.role_id: row for row in rows}
        row = existing.get(role_id)
        if row is not None:
            if row.threshold != threshold:
                # Members between the two thresholds gain or lose it: the walk starts from the lower.
                cookie_roles_resync_later(guild_id=guild_id, previous=[(row.threshold, role_id)])
                row.threshold = threshold
                row.save(update_fields=["threshold"])
            return row, False
        if len(existing) >= MAX_COOKIE_ROLES:
            raise CookieRoleInvalid(f"A server has at most {MAX_COOKIE_ROLES} cookie roles; remove one first.")
        cookie_roles_resync_later(guild_id=guild_id, previous=[])
        return CookieRole.objects.create(guild_id=guild_id, threshold=threshold, role_id=role_id, added_by_id=actor_id), True


@retry_transient()
def cookie_role_remove(*, guild_id: int, role_id: int) -> CookieRole:
    """Stop giving ``role_id`` for cookies; the worker takes it from the members whose count reached it."""
    with transaction.atomic():
        row = CookieRole.objects.select_for_update().filter(guild_id=guild_id, role_id=role_id).first()
        if row is None:
            raise CookieRoleMissing(f"<@&{role_id}> is not a cookie role here.")
        row.delete()
        cookie_roles_resync_later(guild_id=guild_id, previous=[(row.threshold, role_id)])
    return row
