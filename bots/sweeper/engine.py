"""The timer engine's loop: act on due timer work within a second of its time.

Each pass resumes paused timers at their deadline, expires due timers (role removed
through Discord, outcome stored, a notice posted), sends due warnings and posts due role
reports, in that order: an expiry never waits behind a warning. Between passes it sleeps
until the next due time (four index probes) or one second, whichever is sooner. Rows are
claimed with leases (timers.services.sweeps), so several workers can run this at once.

When ``halt`` is set (the worker is stopping, or the next run has taken over) the pass
in hand starts nothing new, gives Discord calls in flight ``STOP_GRACE`` seconds to
finish and releases every claim it did not get to record, so another worker can take
those rows at once instead of after a lease.
"""

from __future__ import annotations

import asyncio
import logging
import os
import socket
import statistics
import time
import uuid
from collections import defaultdict
from collections.abc import Awaitable, Callable, Sequence
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any, TypeVar

import discord
from django.utils import timezone

from bots.db import call
from bots.log_poster import LogPoster
from bots.rest import DiscordRest, nonce_for
from bots.role_changes import RoleChange, role_add, role_remove
from timers.durations import format_duration
from timers.models import ExpiryOutcome, RoleReport, TimedRole
from timers.selectors import timer_has_time_left, timer_work_next_due, timers_shown
from timers.services import timer_auto_resume
from timers.services.sweeps import (
    sweep_claim_expiries,
    sweep_claim_reports,
    sweep_claim_warnings,
    sweep_record_expiries,
    sweep_record_warnings,
    sweep_release,
    warning_threshold_due,
)

logger = logging.getLogger(__name__)
CONCURRENCY = 64
POLL_SECONDS = 1.0
STOP_GRACE = 3.0  # a stopping worker's calls in flight may finish within this; the rest are released
NOTICE_OUTCOMES = (ExpiryOutcome.REMOVED, ExpiryOutcome.FORBIDDEN)
Item = TypeVar("Item")
Result = TypeVar("Result")


@dataclass
class SweepFigures:
    worker: str
    started_at: datetime = field(default_factory=timezone.now)
    resumed: int = 0
    warned: int = 0
    expired: int = 0
    reported: int = 0
    failures: int = 0
    released: int = 0
    latencies_ms: list[float] = field(default_factory=list)

    def as_record(self) -> dict[str, Any]:
        lat = self.latencies_ms
        return {
            "worker": self.worker,
            "started_at": self.started_at,
            "finished_at": timezone.now(),
            "resumed": self.resumed,
            "warned": self.warned,
            "expired": self.expired,
            "reported": self.reported,
            "failures": self.failures,
            "latency_p50_ms": round(statistics.median(lat), 1) if lat else None,
            "latency_max_ms": round(max(lat), 1) if lat else None,
        }


def worker_name() -> str:
    return f"{socket.gethostname()[:40]}:{os.getpid()}"


def _reason(what: str) -> str:
    return f"Guildhall timer: {what}"


class Sweeper:
    def __init__(self, rest: DiscordRest | None, owner: str | None = None, clock: Callable[[], datetime] = timezone.now) -> None:
        self.rest = rest
        self.owner = owner or uuid.uuid4().hex
        self.now = clock  # tests move time by passing their own clock
        self.figures = SweepFigures(worker=worker_name())
        self.halt = asyncio.Event()

    async def run(self, seconds: float, stop: asyncio.Event | None = None) -> SweepFigures:
        """Sweep until ``seconds`` have passed or ``stop`` is set."""
        if stop is not None:
            self.halt = stop
        end = time.monotonic() + seconds
        # The activity log is posted beside the loop, so that pacing a channel never delays an expiry.
        posting = asyncio.ensure_future(LogPoster(self.rest, clock=self.now).run(self.halt, end)) if self.rest else None
        try:
            await self._loop(end)
        finally:
            if posting is not None:
                await self._stop_posting(posting)
        return self.figures

    @staticmethod
    async def _stop_posting(posting: asyncio.Future[Any]) -> None:
        """Give the log poster's message in flight the same grace as the engine's calls, then stop it."""
        try:
            await asyncio.wait_for(asyncio.shield(posting), timeout=STOP_GRACE + POLL_SECONDS)
        except TimeoutError:
            posting.cancel()  # its claimed entries are released (bots.log_poster)
        except Exception:
            logger.exception("the activity log poster failed")
        await asyncio.gather(posting, return_exceptions=True)

    async def _loop(self, end: float) -> None:
        while not self.halt.is_set():
            # Probe first: with nothing due a tick is these four index probes, and work that falls
            # due while a pass runs is found by the next probe, not after a whole POLL_SECONDS.
            now = self.now()
            due = await call(timer_work_next_due)
            worked = await self.pass_once() if due is not None and due <= now else 0
            if time.monotonic() >= end:
                break
            if worked:
                continue
            # Due but nothing claimed (leased by another worker, or backing off): poll.
            wait = POLL_SECONDS if due is None or due <= now else min(POLL_SECONDS, (due - now).total_seconds())
            wait = max(0.01, min(wait, end - time.monotonic()))
            try:
                await asyncio.wait_for(self.halt.wait(), timeout=wait)
            except TimeoutError:
                pass

    async def pass_once(self) -> int:
        """One round of every kind of due work; the number of items done."""
        resumed = await call(timer_auto_resume, now=self.now())
        self.figures.resumed += resumed
        if self.rest is None:
            return resumed  # without a token nothing that needs Discord can be done
        done = resumed
        if not self.halt.is_set():
            expiries = await call(sweep_claim_expiries, owner=self.owner, now=self.now())
            done += await self._expire(expiries) if expiries else 0
        if not self.halt.is_set():
            claim = await call(sweep_claim_warnings, owner=self.owner, now=self.now())
            done += await self._warn(claim.timers, claim.thresholds) if claim.timers else 0
        if not self.halt.is_set():
            reports = await call(sweep_claim_reports, now=self.now())
            done += len(reports)
            await self._each(self._report, reports)
        return done

    async def _each(
        self, func: Callable[[Item], Awaitable[Result]], items: Sequence[Item], limit: int = CONCURRENCY
    ) -> list[Result | None]:
        """``func`` over ``items``, ``limit`` at a time; None for each one a halt kept from finishing."""
        gate = asyncio.Semaphore(limit)

        async def one(item: Item) -> Result | None:
            async with gate:
                return None if self.halt.is_set() else await func(item)

        tasks = [asyncio.ensure_future(one(item)) for item in items]
        everything = asyncio.gather(*tasks, return_exceptions=True)
        grace = asyncio.ensure_future(self._halted_for(STOP_GRACE))
        waiting: set[asyncio.Future[Any]] = {everything, grace}
        await asyncio.wait(waiting, return_when=asyncio.FIRST_COMPLETED)
        grace.cancel()
        for task in tasks:
            task.cancel()  # only those still in flight after the grace are affected
        await everything
        results: list[Result | None] = []
        for task in tasks:
            error = None if task.cancelled() else task.exception()
            if error is not None:
                logger.error("timer engine step failed; its claim is released", exc_info=error)
            results.append(None if task.cancelled() or error is not None else task.result())
        return results

    async def _halted_for(self, seconds: float) -> None:
        await self.halt.wait()
        await asyncio.sleep(seconds)

    async def _release(self, timers: list[TimedRole]) -> None:
        if timers:
            self.figures.released += await call(sweep_release, timer_ids=[t.pk for t in timers], owner=self.owner)

    # -- warnings -------------------------------------------------------------------------
    async def _warn(self, timers: list[TimedRole], thresholds: dict[int, list[int]]) -> int:
        now = self.now()
        sent = await self._each(lambda t: self._warn_one(t, thresholds.get(t.guild_id, []), now), timers)
        # A failed post keeps its warning claim until the lease ends: that is the retry's back-off.
        done = [timer.pk for timer, ok in zip(timers, sent, strict=True) if ok]
        await self._release([timer for timer, ok in zip(timers, sent, strict=True) if ok is None])
        announced = await call(sweep_record_warnings, timer_ids=done, thresholds=thresholds, owner=self.owner, now=now)
        self.figures.warned += sum(1 for t in announced.values() if t is not None)
        return len(done)

    async def _warn_one(self, timer: TimedRole, thresholds: list[int], now: datetime) -> bool:
        assert self.rest is not None
        threshold = warning_threshold_due(timer, thresholds, now)
        if threshold is None or timer.away_since is not None:
            return True  # nothing due, or the member has left the guild: nobody to warn (recorded as dealt with)
        ts = int(timer.ends_at.timestamp())
        text = f"⏳ <@{timer.member_id}>, your <@&{timer.role_id}> role ends <t:{ts}:R> (<t:{ts}:f>)."
        try:
            await self.rest.post_or_dm(timer.warn_channel_id, timer.member_id, text, nonce_for("warn", timer.pk, threshold, ts))
        except discord.HTTPException as exc:
            logger.warning("warning for timer %s failed: %s; it is retried when the lease ends", timer.pk, exc)
            self.figures.failures += 1
            return False
        return True

    # -- expiry -----------------------------------------------------------------------------
    async def _expire(self, timers: list[TimedRole]) -> int:
        assert self.rest is not None
        http = self.rest.http

        async def remove(timer: TimedRole) -> RoleChange:
            change = await role_remove(http, timer.guild_id, timer.member_id, timer.role_id, _reason("time is up"))
            if change.done:
                self.figures.latencies_ms.append((self.now() - timer.ends_at).total_seconds() * 1000)
            return change

        results = await self._each(remove, timers)
        await self._release([t for t, change in zip(timers, results, strict=True) if change is None])
        acted = [(t, change) for t, change in zip(timers, results, strict=True) if change is not None]
        outcomes = [(t.pk, change.expiry_outcome, change.detail) for t, change in acted]
        unrecorded = await call(sweep_record_expiries, outcomes=outcomes, owner=self.owner, now=self.now())
        notices: dict[int, list[str]] = defaultdict(list)
        for timer, change in acted:
            outcome = change.expiry_outcome
            if timer.pk in unrecorded:
                if change.done:
                    await self._restore_if_live(timer)
                continue
            if outcome == ExpiryOutcome.FAILED_RETRY:
                self.figures.failures += 1
                continue
            self.figures.expired += 1
            if outcome in NOTICE_OUTCOMES and timer.warn_channel_id:
                line = f"<@{timer.member_id}>'s <@&{timer.role_id}> time is up; the role was removed."
                if outcome == ExpiryOutcome.FORBIDDEN:
                    line = f"<@{timer.member_id}>'s <@&{timer.role_id}> time is up, but I may not remove the role (check my permissions)."
                notices[timer.warn_channel_id].append(line)
        gate = asyncio.Semaphore(8)

        async def notice(channel_id: int, lines: list[str]) -> None:
            async with gate:
                await self._notice(channel_id, lines)

        await asyncio.gather(*(notice(channel_id, lines) for channel_id, lines in notices.items()))
        return len(acted)

    async def _restore_if_live(self, timer: TimedRole) -> None:
        """Time was added while the role was being taken: give it back."""
        assert self.rest is not None
        # A timer that is still due was not given more time: our claim ran out and another
        # worker is removing the role too, so putting it back would outlast that removal.
        live = await call(
            timer_has_time_left, guild_id=timer.guild_id, member_id=timer.member_id, role_id=timer.role_id, now=self.now()
        )
        if live:
            await role_add(self.rest.http, timer.guild_id, timer.member_id, timer.role_id, _reason("time was added"))

    async def _notice(self, channel_id: int, lines: list[str]) -> None:
        assert self.rest is not None
        chunk: list[str] = []
        for line in [*lines, None]:
            if line is None or sum(len(x) + 1 for x in chunk) + len(line) > 1900:
                if chunk:
                    try:
                        await self.rest.post(channel_id, content="\n".join(chunk), nonce=nonce_for("expired", channel_id, *chunk))
                    except discord.HTTPException as exc:
                        logger.info("expiry notice to channel %s failed: %s", channel_id, exc)
                chunk = []
            if line is not None:
                chunk.append(line)

    # -- reports ----------------------------------------------------------------------------
    async def _report(self, report: RoleReport) -> None:
        assert self.rest is not None
        holders = await call(timers_shown, guild_id=report.guild_id, role_id=report.role_id, limit=40)
        now = self.now()
        lines = []
        for timer in holders:
            if timer.expires_at is not None:
                lines.append(f"<@{timer.member_id}> — ends <t:{int(timer.expires_at.timestamp())}:R>")
            else:
                lines.append(f"<@{timer.member_id}> — paused, {format_duration(timer.frozen_remaining)} left")
        embed = discord.Embed(
            title="Role report",
            description=f"<@&{report.role_id}>: {len(holders)} member(s) with a timer\n" + "\n".join(lines),
            timestamp=now,
        )
        try:
            await self.rest.post(report.channel_id, embed=embed, nonce=nonce_for("report", report.pk, report.last_run_at))
            self.figures.reported += 1
        except discord.HTTPException as exc:
            logger.info("report %s failed: %s", report.pk, exc)
            self.figures.failures += 1
