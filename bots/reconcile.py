"""Reconciliation in the bot: each due guild's members fetched through REST and compared with its timers.

One guild at a time per process, from a queue filled when a shard becomes ready and then
every few minutes with the process's guilds (``timers.services.reconcile`` decides which
are due, from the last-reconciled record, so a restart redoes only those). Each member
page and each role given back waits for the pacer (``RECONCILE_REQUESTS_PER_SECOND``),
on top of discord.py's own limiter and the shared one (``bots.ratelimit``, through the
bot's HTTP client), so a guild of 100,000 members costs 100 paced pages and never
crowds out the commands members are waiting on.
"""

from __future__ import annotations

import asyncio
import logging
import time
from dataclasses import dataclass

import discord
from django.conf import settings

from bots.db import call
from bots.role_changes import role_add
from timers.models import ExpiryOutcome
from timers.selectors import reconcile_plan
from timers.services.reconcile import (
    Restore,
    reconcile_claim,
    reconcile_finish,
    reconcile_members_gone,
    reconcile_members_seen,
    reconcile_release,
    reconcile_restore_record,
)

logger = logging.getLogger(__name__)
REASON = "Guildhall timer: role given back (the timer is still running)"


class Pacer:
    """At most ``per_second`` starts a second, spaced evenly (one guild's requests at a time)."""

    def __init__(self, per_second: float) -> None:
        self.interval = 1.0 / per_second
        self._next = 0.0

    async def wait(self) -> None:
        now = time.monotonic()
        if self._next > now:
            await asyncio.sleep(self._next - now)
        self._next = max(now, self._next) + self.interval


@dataclass
class Figures:
    checked: int = 0
    restored: int = 0
    paused: int = 0
    away: int = 0
    untracked: int = 0
    pages: int = 0


class Reconciler:
    """The process's queue of guilds to reconcile and the one task working through it."""

    def __init__(self, bot: discord.Client, owner: str) -> None:
        self.bot = bot
        self.owner = owner[:32]
        self.queue: asyncio.Queue[int] = asyncio.Queue()
        self._queued: set[int] = set()
        self.pacer = Pacer(settings.RECONCILE_REQUESTS_PER_SECOND)
        self.last: dict[int, Figures] = {}

    def offer(self, guild_ids: list[int]) -> None:
        """Queue guilds (those already waiting are not queued twice)."""
        for guild_id in guild_ids:
            if guild_id not in self._queued:
                self._queued.add(guild_id)
                self.queue.put_nowait(guild_id)

    async def run(self) -> None:
        """Work through the queue for ever, one guild at a time."""
        while True:
            guild_id = await self.queue.get()
            self._queued.discard(guild_id)
            try:
                await self.reconcile(guild_id)
            except asyncio.CancelledError:
                await self._release(guild_id, "stopped before it was done")
                raise
            except Exception:
                logger.exception("reconciling guild %s failed; it is tried again later", guild_id)
                await self._release(guild_id, "failed; see the bot's log")

    async def _release(self, guild_id: int, detail: str) -> None:
        # Best effort: when the database is away too, the lease runs out by itself.
        try:
            await call(reconcile_release, guild_id=guild_id, owner=self.owner, detail=detail)
        except Exception as exc:
            logger.warning("could not release guild %s's reconciliation (%s); its lease runs out", guild_id, exc)

    async def reconcile(self, guild_id: int) -> Figures | None:
        """Reconcile one guild if it is due and free; its figures (None when not due)."""
        if not await call(reconcile_claim, guild_id=guild_id, owner=self.owner):
            return None
        timers_of, timed_roles = await call(reconcile_plan, guild_id=guild_id)
        figures = Figures(checked=sum(len(roles) for roles in timers_of.values()))
        restores: list[Restore] = []
        if timed_roles:
            seen = await self._walk_members(guild_id, timers_of, timed_roles, figures, restores)
            gone = [m for m in timers_of if m not in seen]
            if gone:
                figures.away += await call(reconcile_members_gone, guild_id=guild_id, member_ids=gone)
        for restore in restores:
            await self.pacer.wait()
            change = await role_add(self.bot.http, guild_id, restore.member_id, restore.role_id, REASON)
            await call(reconcile_restore_record, timer_id=restore.timer_id, done=change.done, detail=change.detail)
            figures.restored += change.done
            if change.refusal == ExpiryOutcome.MEMBER_GONE:  # left since their page was read
                figures.away += await call(reconcile_members_gone, guild_id=guild_id, member_ids=[restore.member_id])
        if figures.untracked:
            logger.warning(
                "guild %s: %d timed role(s) held with no running timer (reported, not removed)", guild_id, figures.untracked
            )
        logger.info("reconciled guild %s: %s", guild_id, figures)
        await call(reconcile_finish, guild_id=guild_id, owner=self.owner, **_stored(figures))
        self.last[guild_id] = figures
        return figures

    async def _walk_members(self, guild_id, timers_of, timed_roles, figures: Figures, restores: list[Restore]) -> set[int]:
        """Page through the member list, handing each page to the services; the ids seen."""
        seen: set[int] = set()
        after = 0
        bot_id = self.bot.user.id if self.bot.user else 0
        while True:
            await self.pacer.wait()
            page = await self.bot.http.get_members(guild_id, limit=settings.RECONCILE_PAGE_SIZE, after=after)
            figures.pages += 1
            present: dict[int, set[int]] = {}
            for member in page:
                member_id = int(member["user"]["id"])
                roles = {int(r) for r in member.get("roles", ())}
                seen.add(member_id)
                if member_id in timers_of:
                    present[member_id] = roles
                if member_id != bot_id:
                    figures.untracked += len((roles & timed_roles) - timers_of.get(member_id, set()))
            if present:
                result = await call(reconcile_members_seen, guild_id=guild_id, members=present)
                restores.extend(result.restores)
                figures.paused += result.paused
            if len(page) < settings.RECONCILE_PAGE_SIZE:
                return seen
            after = max(int(m["user"]["id"]) for m in page)


def _stored(figures: Figures) -> dict[str, int | str]:
    return {
        "checked": figures.checked,
        "restored": figures.restored,
        "paused": figures.paused,
        "away": figures.away,
        "untracked": figures.untracked,
        "detail": f"{figures.pages} member page(s)",
    }
