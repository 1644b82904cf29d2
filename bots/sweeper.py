"""The timer engine: for about a minute at a time, act on due timer work within a second.

Each pass resumes paused timers at their deadline, sends due warnings, expires due
timers (role removed through Discord, outcome stored, a notice posted) and posts due
role reports. Between passes it sleeps until the next due time (four index probes) or
one second, whichever is sooner. Rows are claimed with leases (timers.services.sweeps),
so several workers can run this at once.
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
from dataclasses import dataclass, field
from datetime import datetime

import discord
from django.db.models import Q
from django.utils import timezone

from bots.db import call
from bots.rest import DiscordRest, nonce_for
from timers.durations import format_duration
from timers.models import ExpiryOutcome, RoleReport, TimedRole
from timers.selectors import timers_live
from timers.services import timer_auto_resume, timer_settings_get
from timers.services.sweeps import (
    sweep_claim_expiries,
    sweep_claim_reports,
    sweep_claim_warnings,
    sweep_next_due,
    sweep_record_expiries,
    sweep_record_warnings,
    warning_threshold_due,
)

logger = logging.getLogger(__name__)
CONCURRENCY = 64
POLL_SECONDS = 1.0
NOTICE_OUTCOMES = (ExpiryOutcome.REMOVED, ExpiryOutcome.FORBIDDEN)


@dataclass
class SweepFigures:
    worker: str
    started_at: datetime = field(default_factory=timezone.now)
    resumed: int = 0
    warned: int = 0
    expired: int = 0
    reported: int = 0
    failures: int = 0
    latencies_ms: list[float] = field(default_factory=list)

    def as_record(self) -> dict:
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


async def _limited(func, items, limit: int = CONCURRENCY) -> list:
    gate = asyncio.Semaphore(limit)

    async def one(item):
        async with gate:
            return await func(item)

    return await asyncio.gather(*(one(item) for item in items))


def _reason(what: str) -> str:
    return f"Guildhall timer: {what}"


class Sweeper:
    def __init__(self, rest: DiscordRest | None, owner: str | None = None, clock=timezone.now) -> None:
        self.rest = rest
        self.owner = owner or uuid.uuid4().hex
        self.now = clock  # tests move time by passing their own clock
        self.figures = SweepFigures(worker=worker_name())
        self._thresholds: dict[int, list[int]] = {}

    async def run(self, seconds: float, stop: asyncio.Event | None = None) -> SweepFigures:
        """Sweep until ``seconds`` have passed or ``stop`` is set."""
        stop = stop or asyncio.Event()
        end = time.monotonic() + seconds
        while not stop.is_set():
            # Probe first: with nothing due a tick is these four index probes, and work that falls
            # due while a pass runs is found by the next probe, not after a whole POLL_SECONDS.
            now = self.now()
            due = await call(sweep_next_due, now=now)
            worked = await self.pass_once() if due is not None and due <= now else 0
            if time.monotonic() >= end:
                break
            if worked:
                continue
            # Due but nothing claimed (leased by another worker, or backing off): poll.
            wait = POLL_SECONDS if due is None or due <= now else min(POLL_SECONDS, (due - now).total_seconds())
            wait = max(0.01, min(wait, end - time.monotonic()))
            try:
                await asyncio.wait_for(stop.wait(), timeout=wait)
            except TimeoutError:
                pass
        return self.figures

    async def pass_once(self) -> int:
        """One round of every kind of due work; the number of items handled."""
        resumed = await call(timer_auto_resume, now=self.now())
        self.figures.resumed += resumed
        if self.rest is None:
            return resumed  # without a token nothing that needs Discord can be done
        warnings = await call(sweep_claim_warnings, owner=self.owner, now=self.now())
        if warnings:
            await self._warn(warnings)
        expiries = await call(sweep_claim_expiries, owner=self.owner, now=self.now())
        if expiries:
            await self._expire(expiries)
        reports = await call(sweep_claim_reports, now=self.now())
        if reports:
            await _limited(self._report, reports)
        return resumed + len(warnings) + len(expiries) + len(reports)

    async def _thresholds_of(self, guild_id: int) -> list[int]:
        if guild_id not in self._thresholds:
            self._thresholds[guild_id] = list((await call(timer_settings_get, guild_id=guild_id)).warning_minutes)
        return self._thresholds[guild_id]

    # -- warnings -------------------------------------------------------------------------
    async def _warn(self, timers: list[TimedRole]) -> None:
        now = self.now()
        sent = await _limited(lambda t: self._warn_one(t, now), timers)
        done = [timer.pk for timer, ok in zip(timers, sent) if ok]
        announced = await call(sweep_record_warnings, timer_ids=done, owner=self.owner, now=now)
        self.figures.warned += sum(1 for t in announced.values() if t is not None)

    async def _warn_one(self, timer: TimedRole, now: datetime) -> bool:
        threshold = warning_threshold_due(timer, await self._thresholds_of(timer.guild_id), now)
        if threshold is None:
            return True
        ts = int(timer.expires_at.timestamp())
        text = f"⏳ <@{timer.member_id}>, your <@&{timer.role_id}> role ends <t:{ts}:R> (<t:{ts}:f>)."
        try:
            await self.rest.post_or_dm(timer.warn_channel_id, timer.member_id, text, nonce_for("warn", timer.pk, threshold, ts))
        except discord.HTTPException as exc:
            logger.warning("warning for timer %s failed: %s; it is retried when the lease ends", timer.pk, exc)
            self.figures.failures += 1
            return False
        return True

    # -- expiry -----------------------------------------------------------------------------
    async def _expire(self, timers: list[TimedRole]) -> None:
        async def remove(timer: TimedRole) -> tuple[str, str]:
            outcome, detail = await self.rest.role_remove(timer.guild_id, timer.member_id, timer.role_id, _reason("time is up"))
            if outcome == ExpiryOutcome.REMOVED:
                self.figures.latencies_ms.append((self.now() - timer.expires_at).total_seconds() * 1000)
            return outcome, detail

        results = await _limited(remove, timers)
        outcomes = [(t.pk, outcome, detail) for t, (outcome, detail) in zip(timers, results)]
        unrecorded = await call(sweep_record_expiries, outcomes=outcomes, owner=self.owner, now=self.now())
        notices: dict[int, list[str]] = defaultdict(list)
        for timer, (outcome, _) in zip(timers, results):
            if timer.pk in unrecorded:
                if outcome == ExpiryOutcome.REMOVED:
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
        await _limited(lambda item: self._notice(*item), list(notices.items()), limit=8)

    async def _restore_if_live(self, timer: TimedRole) -> None:
        """Time was added while the role was being taken: give it back."""
        now = self.now()
        # A timer that is still due was not given more time: our claim ran out and another
        # worker is removing the role too, so putting it back would outlast that removal.
        not_due = Q(expires_at__isnull=True) | Q(expires_at__gt=now)
        live = await call(
            lambda: timers_live(guild_id=timer.guild_id, member_id=timer.member_id, role_id=timer.role_id)
            .filter(not_due)
            .exists()
        )
        if live:
            await self.rest.role_add(timer.guild_id, timer.member_id, timer.role_id, _reason("time was added"))

    async def _notice(self, channel_id: int, lines: list[str]) -> None:
        chunk: list[str] = []
        for line in lines + [None]:
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
        holders = await call(lambda: list(timers_live(guild_id=report.guild_id, role_id=report.role_id)[:40]))
        now = self.now()
        lines = []
        for timer in holders:
            if timer.expires_at is not None:
                lines.append(f"<@{timer.member_id}> — ends <t:{int(timer.expires_at.timestamp())}:R>")
            else:
                lines.append(f"<@{timer.member_id}> — paused, {format_duration(timer.paused_remaining)} left")
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
