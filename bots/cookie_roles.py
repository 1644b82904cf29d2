"""Make a member's cookie roles on Discord match their plan (bot for chat changes, worker for web and API).

``cookie_roles_apply`` is the django-q2 task the web and API queue after a change commits;
``cookie_roles_resync`` the one queued when a guild's thresholds or mode change, which walks
every member who qualifies.

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
from commands.notify import cookie_roles_resync_done, cookie_roles_resync_generation
from commands.selectors import cookie_balance, cookie_role_plan, cookie_roles_list, cookie_roles_resync_page

logger = logging.getLogger(__name__)
MAX_LOCKS = 10_000
RECENT_SECONDS = 60.0


def cookie_roles_reason(balance: int) -> str:
    """The audit-log reason Discord shows beside the change."""
    return f"Guildhall cookie roles: {balance} cookies"


async def cookie_roles_sync(
    http: HTTPClient,
    guild_id: int,
    member_id: int,
    held: Iterable[int] | None,
    *,
    previous: Iterable[tuple[int, int]] = (),
    reason: str = "",
) -> tuple[set[int], set[int], list[RoleChange]]:
    """Grant and take the member's cookie roles for their current balance; ``(added, removed, refusals)``.

    ``held``: the roles the member holds (from the message or interaction), None when unknown.
    ``previous``: ``(threshold, role id)`` pairs no longer cookie roles, taken when the balance reached them.
    """
    plan = await call(cookie_role_plan, guild_id=guild_id, member_id=member_id)
    if plan is None and not previous:
        return set(), set(), []
    if plan is None:
        to_add: set[int] = set()
        to_remove: set[int] = set()
        balance = await call(cookie_balance, guild_id=guild_id, member_id=member_id)
    else:
        to_add, to_remove = plan.changes(held)
        balance = plan.balance
    managed = plan.managed if plan is not None else frozenset()
    holding = None if held is None else set(held)
    for threshold, role_id in previous:
        if role_id not in managed and balance >= threshold and (holding is None or role_id in holding):
            to_remove.add(role_id)
    reason = reason or cookie_roles_reason(balance)
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


RESYNC_REASON = "cookie roles updated"


def _resync_floor(*, guild_id: int, previous: list[tuple[int, int]]) -> int | None:
    thresholds = [row.threshold for row in cookie_roles_list(guild_id=guild_id)] + [t for t, _ in previous]
    return min(thresholds) if thresholds else None


async def _resync(
    guild_id: int, generation: int, previous: list[tuple[int, int]], after: tuple[int, int] | None
) -> tuple[dict[str, int], tuple[int, int] | None]:
    """Walk pages until done, superseded or out of this run's time; ``(figures, cursor to go on from)``."""
    figures = {"members": 0, "added": 0, "removed": 0, "refused": 0, "gone": 0, "superseded": 0}
    deadline = time.monotonic() + settings.Q_CLUSTER["timeout"] * 0.6
    floor = await call(_resync_floor, guild_id=guild_id, previous=previous)
    async with DiscordRest() as rest:
        while floor is not None:
            if await call(cookie_roles_resync_generation, guild_id=guild_id) not in (None, generation):
                figures["superseded"] = 1
                after = None
                break
            page = await call(
                cookie_roles_resync_page, guild_id=guild_id, floor=floor, after=after, size=settings.COOKIE_ROLES_SYNC_PAGE
            )
            if not page:
                after = None
                break
            for member_id, _balance in page:
                try:
                    member = await rest.http.get_member(guild_id, member_id)
                except discord.NotFound:
                    figures["gone"] += 1
                    continue
                held = [int(r) for r in member.get("roles", [])]
                added, removed, refused = await cookie_roles_sync(
                    rest.http, guild_id, member_id, held, previous=previous, reason=RESYNC_REASON
                )
                figures["members"] += 1
                figures["added"] += len(added)
                figures["removed"] += len(removed)
                figures["refused"] += len(refused)
            after = (page[-1][1], page[-1][0])
            logger.info(
                "cookie roles in %s: %s members done, down to %s cookies, %s", guild_id, figures["members"], after[0], figures
            )
            if time.monotonic() > deadline:
                break
    await call(connections.close_all)
    return figures, after


def cookie_roles_resync(
    guild_id: int, generation: int, previous: list[list[int]], after: list[int] | None = None
) -> dict[str, int] | str:
    """Make the cookie roles of every member who qualifies match after the guild's thresholds or mode changed.

    Walks the balances highest first down to the lowest threshold that matters (those now
    and the ``previous`` ones), ``COOKIE_ROLES_SYNC_PAGE`` members a page, and queues itself again from its cursor
    before the task's time runs out; stops when a newer change queued a newer sync. A
    repeated run (a retry after a kill) sets the same roles again, which changes nothing.
    """
    if not settings.DISCORD_TOKEN:
        logger.warning("DISCORD_TOKEN is not set: the cookie roles of %s wait", guild_id)
        return "no token"
    close_old_connections()
    pairs = [(int(t), int(r)) for t, r in previous]
    cursor = (int(after[0]), int(after[1])) if after else None
    figures, cursor = asyncio.run(_resync(guild_id, generation, pairs, cursor))
    if cursor is not None:
        from django_q.tasks import async_task

        async_task(
            "bots.cookie_roles.cookie_roles_resync",
            guild_id,
            generation,
            [list(p) for p in pairs],
            list(cursor),
            task_name=f"cookie-roles-resync-{guild_id}-{generation}-{cursor[0]}-{cursor[1]}",
        )
    elif not figures["superseded"]:
        cookie_roles_resync_done(guild_id=guild_id, generation=generation)
    logger.info("cookie roles in %s: %s", guild_id, figures)
    return figures
