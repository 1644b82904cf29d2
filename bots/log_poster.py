"""Posting the activity log to each guild's log channel: batched into few messages, paced per channel.

It runs in the worker, beside the timer engine's loop in each sweep run (``Sweeper.run``):
entries come from every process (the bot, the dashboard, the API, the sweep itself), the
worker runs in every setup including ``make run``'s embedded default, it already holds a
logged-in REST client, and the engine's relay keeps exactly one run going. Keeping it out
of the bot also keeps the gateway process's memory and hot path as they are.

A pass takes the guilds with unposted entries and, for each, claims a batch
(``log_claim``: a per-guild lock and a lease, so a second poster, whether the overlap of a
hand-over or another cluster, leaves the guild alone and no entry is posted twice), turns
mentions into names from the directory, packs the lines into embeds (up to ten per
message, 6,000 characters), and posts them with a nonce per message (Discord drops a
repeat after a crash) at most ``MESSAGE_LIMIT`` per ``MESSAGE_WINDOW`` per channel, under
discord.py's own bucket handling and the shared limiter (bots.ratelimit) underneath. A
burst of 500 expiries is about five messages.
"""

from __future__ import annotations

import asyncio
import collections
import logging
import time
from collections.abc import Callable
from dataclasses import dataclass
from datetime import datetime

import discord
from django.utils import timezone

from bots.db import call
from bots.log_format import LogMessage, log_lines, log_pack
from bots.rest import DiscordRest, nonce_for
from guilds.log_selectors import log_guilds_pending, log_names, named
from guilds.models import LogEntry, PostOutcome
from guilds.services.log import log_claim, log_mark_posted, log_mark_unpostable, log_release

logger = logging.getLogger(__name__)
MESSAGE_LIMIT = 5  # Discord: 5 messages per 5 s per channel
MESSAGE_WINDOW = 5.0 + 0.25  # with a margin for the clocks of Discord and this machine
POLL_SECONDS = 1.0
GUILD_CONCURRENCY = 8
COLOUR = discord.Colour(0x5865F2)


class ChannelPacer:
    """At most ``limit`` posts per ``window`` seconds to each channel, from this poster."""

    def __init__(self, limit: int = MESSAGE_LIMIT, window: float = MESSAGE_WINDOW, clock: Callable[[], float] = time.monotonic):
        self.limit, self.window, self.clock = limit, window, clock
        self.sent: dict[int, collections.deque[float]] = collections.defaultdict(collections.deque)

    def delay(self, channel_id: int) -> float:
        """Seconds to wait before the next post to ``channel_id``."""
        times, now = self.sent[channel_id], self.clock()
        while times and times[0] <= now - self.window:
            times.popleft()
        return 0.0 if len(times) < self.limit else times[0] + self.window - now

    def note(self, channel_id: int) -> None:
        self.sent[channel_id].append(self.clock())


@dataclass
class PosterFigures:
    entries: int = 0
    messages: int = 0
    kept: int = 0  # entries that could not be posted (channel gone, no permission)


class LogPoster:
    def __init__(self, rest: DiscordRest, clock: Callable[[], datetime] = timezone.now, pacer: ChannelPacer | None = None):
        self.rest = rest
        self.now = clock
        self.pacer = pacer or ChannelPacer()
        self.figures = PosterFigures()

    async def run(self, halt: asyncio.Event, until: float) -> PosterFigures:
        """Post what is pending, then look again every ``POLL_SECONDS``, until ``until`` (monotonic) or ``halt``."""
        while not halt.is_set() and time.monotonic() < until:
            try:
                await self.pass_once(halt)
            except Exception:  # the database away, a bug: the next pass tries again; the timers go on
                logger.exception("posting the activity log failed; trying again shortly")
            wait = max(0.01, min(POLL_SECONDS, until - time.monotonic()))
            try:
                await asyncio.wait_for(halt.wait(), timeout=wait)
            except TimeoutError:
                pass
        return self.figures

    async def pass_once(self, halt: asyncio.Event | None = None) -> int:
        """Post every guild's pending entries; the number of entries handled."""
        halt = halt or asyncio.Event()
        guild_ids = await call(log_guilds_pending, now=self.now())
        gate = asyncio.Semaphore(GUILD_CONCURRENCY)

        async def one(guild_id: int) -> int:
            async with gate:
                return await self.post_guild(guild_id, halt)

        return sum(await asyncio.gather(*(one(g) for g in guild_ids)))

    async def post_guild(self, guild_id: int, halt: asyncio.Event) -> int:
        """Post the guild's pending entries, batch after batch; the number handled."""
        handled = 0
        while not halt.is_set():
            claim = await call(log_claim, guild_id=guild_id, now=self.now())
            if claim.channel_id is None or not claim.entries:
                return handled
            try:
                done, finished = await self._post_claim(guild_id, claim.channel_id, claim.entries, halt)
            except asyncio.CancelledError:
                # Stopped mid-batch: what was not sent goes back at once, not after the lease.
                await asyncio.shield(call(log_release, entry_ids=[e.pk for e in claim.entries]))
                raise
            handled += done
            if not finished:
                return handled
        return handled

    async def _post_claim(self, guild_id: int, channel_id: int, entries: list[LogEntry], halt: asyncio.Event) -> tuple[int, bool]:
        """Post one claimed batch; (entries handled, whether to go on with the guild's next batch)."""
        names = await call(log_names, entries=entries)
        messages = log_pack(log_lines(entries, lambda text: named(text, names, discord.utils.escape_markdown)))
        handled = 0
        for i, message in enumerate(messages):
            unsent = [pk for m in messages[i:] for pk in m.entry_ids]
            if not await self._paced(channel_id, halt):
                await call(log_release, entry_ids=unsent)
                return handled, False
            outcome = await self._post(guild_id, channel_id, message)
            if outcome is None:
                return handled, False  # a failure worth retrying: the rest wait out their lease
            if outcome != PostOutcome.POSTED:
                kept = await call(
                    log_mark_unpostable, guild_id=guild_id, channel_id=channel_id, entry_ids=unsent, outcome=outcome
                )
                self.figures.kept += kept
                return handled + kept, False
            await call(log_mark_posted, entry_ids=message.entry_ids, now=self.now())
            handled += len(message.entry_ids)
            self.figures.entries += len(message.entry_ids)
            self.figures.messages += 1
        return handled, True

    async def _paced(self, channel_id: int, halt: asyncio.Event) -> bool:
        """Wait for the channel's next slot; False when halted meanwhile."""
        while (delay := self.pacer.delay(channel_id)) > 0:
            try:
                await asyncio.wait_for(halt.wait(), timeout=delay)
                return False
            except TimeoutError:
                pass
        return not halt.is_set()

    async def _post(self, guild_id: int, channel_id: int, message: LogMessage) -> str | None:
        """Send one message; its outcome (None: failed, retry after the lease)."""
        embeds = [discord.Embed(description=d, colour=COLOUR) for d in message.descriptions]
        embeds[0].title = "Activity log"
        nonce = nonce_for("log", guild_id, message.entry_ids[0], message.entry_ids[-1])
        self.pacer.note(channel_id)
        try:
            await self.rest.post(channel_id, embeds=embeds, nonce=nonce)
        except discord.Forbidden:
            logger.info("guild %s: may not post the activity log in channel %s; entries kept", guild_id, channel_id)
            return PostOutcome.FORBIDDEN
        except discord.NotFound:
            logger.info("guild %s: the log channel %s is gone; entries kept", guild_id, channel_id)
            return PostOutcome.GONE
        except discord.HTTPException as exc:
            logger.warning("guild %s: posting the activity log failed (%s); retried after the lease", guild_id, exc)
            return None
        return PostOutcome.POSTED
