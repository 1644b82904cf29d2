"""Make a member's cookie roles on Discord match their plan (bot for chat changes, worker for web and API).

``cookie_roles_apply`` is the django-q2 task the web and API queue after a change commits.

The plan is read again from the member's current balance just before the roles are set
(``cookie_role_plan``), so when two changes race the last one applied is the latest
count, and the changes go through the one role client (``bots.role_changes``).
"""

from __future__ import annotations

import asyncio
import logging
import time
from collections import OrderedDict
from collections.abc import Iterable

import discord
from discord.http import HTTPClient
from django.conf import settings
from django.db import close_old_connections, connections

from bots.db import call
from bots.rest import DiscordRest
from bots.role_changes import RoleChange, role_add, role_remove
from commands.selectors import cookie_role_plan

logger = logging.getLogger(__name__)
MAX_LOCKS = 10_000
RECENT_SECONDS = 60.0


def cookie_roles_reason(balance: int) -> str:
    """The audit-log reason Discord shows beside the change."""
    return f"Guildhall cookie roles: {balance} cookies"


async def cookie_roles_sync(
    http: HTTPClient, guild_id: int, member_id: int, held: Iterable[int] | None
) -> tuple[set[int], set[int], list[RoleChange]]:
    """Grant and take the member's cookie roles for their current balance; ``(added, removed, refusals)``.

    ``held``: the roles the member holds (from the message or interaction), None when unknown.
    """
    plan = await call(cookie_role_plan, guild_id=guild_id, member_id=member_id)
    if plan is None:
        return set(), set(), []
    to_add, to_remove = plan.changes(held)
    reason = cookie_roles_reason(plan.balance)
    added: set[int] = set()
    removed: set[int] = set()
    refused: list[RoleChange] = []
    for role_id in sorted(to_add):
        change = await role_add(http, guild_id, member_id, role_id, reason)
        (added.add(role_id) if change.done else refused.append(change))
    for role_id in sorted(to_remove):
        change = await role_remove(http, guild_id, member_id, role_id, reason)
        (removed.add(role_id) if change.done else refused.append(change))
    return added, removed, refused


class MemberLocks:
    """One asyncio lock per (guild, member), so one process applies a member's changes one after another."""

    def __init__(self) -> None:
        self._locks: OrderedDict[tuple[int, int], asyncio.Lock] = OrderedDict()

    def get(self, guild_id: int, member_id: int) -> asyncio.Lock:
        key = (guild_id, member_id)
        lock = self._locks.pop(key, None) or asyncio.Lock()
        self._locks[key] = lock
        while len(self._locks) > MAX_LOCKS:
            oldest, old = next(iter(self._locks.items()))
            if old.locked():
                break
            self._locks.pop(oldest)
        return lock


class RecentChanges:
    """The cookie roles this process set on each member in the last ``RECENT_SECONDS``.

    A message's member data can predate the role this bot just gave (two changes seconds
    apart): the roles held are the message's, corrected by what was set since.
    """

    def __init__(self) -> None:
        self._changes: OrderedDict[tuple[int, int], tuple[float, frozenset[int], frozenset[int]]] = OrderedDict()

    def held(self, guild_id: int, member_id: int, shown: Iterable[int] | None) -> set[int] | None:
        if shown is None:
            return None
        held = set(shown)
        found = self._changes.get((guild_id, member_id))
        if found is not None and time.monotonic() - found[0] < RECENT_SECONDS:
            held = (held | found[1]) - found[2]
        return held

    def record(self, guild_id: int, member_id: int, added: set[int], removed: set[int]) -> None:
        key = (guild_id, member_id)
        self._changes.pop(key, None)
        if added or removed:
            self._changes[key] = (time.monotonic(), frozenset(added), frozenset(removed))
        while len(self._changes) > MAX_LOCKS:
            self._changes.popitem(last=False)


async def _cookie_roles(guild_id: int, member_ids: list[int]) -> dict[str, int]:
    figures = {"members": 0, "added": 0, "removed": 0, "refused": 0, "gone": 0}
    async with DiscordRest() as rest:
        for member_id in member_ids:
            try:
                member = await rest.http.get_member(guild_id, member_id)
            except discord.NotFound:
                figures["gone"] += 1  # left the server: their cookies stay, their roles went with them
                continue
            held = [int(r) for r in member.get("roles", [])]
            added, removed, refused = await cookie_roles_sync(rest.http, guild_id, member_id, held)
            figures["members"] += 1
            figures["added"] += len(added)
            figures["removed"] += len(removed)
            figures["refused"] += len(refused)
    await call(connections.close_all)  # the ORM ran in asgiref's sync thread, which outlives this loop
    return figures


def cookie_roles_apply(guild_id: int, member_ids: list[int]) -> dict[str, int] | str:
    """Make the members' cookie roles match their balances after a change on the web or API.

    Enqueued after the change commits (``commands.notify.cookie_roles_sync_later``); each
    member's plan is read when the task runs, so a late or repeated task sets the latest roles.
    """
    if not settings.DISCORD_TOKEN:
        logger.warning("DISCORD_TOKEN is not set: cookie roles of %s members in %s wait", len(member_ids), guild_id)
        return "no token"
    close_old_connections()
    return asyncio.run(_cookie_roles(guild_id, member_ids))
