"""The worker side of bulk timer changes: Discord's member list, the role changes and the progress message.

``bulk_job_run`` (a django-q2 task, queued when a job is created) claims the job's lease and
goes through the members in id order: a bulk add reads ``GET /guilds/{g}/members`` a page
of 1,000 at a time (no member cache anywhere), a bulk clear reads the role's live timers.
For each member it changes the role on Discord first (through the one role client, with an
audit-log reason), then records the member with the job's cursor in one transaction
(timers.services.bulk), so a kill repeats at most one idempotent role change and never a
timer change. Requests go one at a time through discord.py's HTTP client, which waits out
the role route's bucket from its headers, and through the shared limiter (bots.ratelimit),
so a job stays inside Discord's limits however many workers and shards are calling too.

A run works for at most ``RUN_SECONDS`` (well inside q2's task timeout), then gives the
lease back and queues the next run; ``bulk_jobs_resume`` (the one-minute schedule) queues a
run for any job whose worker died, once its lease has run out.
"""

from __future__ import annotations

import asyncio
import logging
import os
import time
import uuid
from collections.abc import AsyncIterator
from typing import Any, cast

from django.conf import settings
from django.db import close_old_connections, connections

from bots.bulk_progress import Progress
from bots.db import call
from bots.rest import DiscordRest
from bots.role_changes import role_add, role_remove
from bots.sweeper.stop import StopFlag, stop_flag
from timers.models import BulkJob, BulkKind, BulkState, ExpiryOutcome
from timers.selectors import bulk_clear_count, bulk_clear_targets, bulk_job_get, bulk_members_with_live_timer
from timers.services.bulk import (
    RUN_TASK,
    BulkLeaseLost,
    bulk_job_advance,
    bulk_job_claim,
    bulk_job_finish,
    bulk_job_release,
    bulk_job_step,
    bulk_job_total,
    bulk_jobs_claimable,
)

logger = logging.getLogger(__name__)
PAGE = 1000  # Discord's largest member-list page
CLEAR_BATCH = 200
# Refusals that would repeat for every member: the job stops and says why.
STOPPING_REFUSALS: dict[str, str] = {
    ExpiryOutcome.FORBIDDEN: "I may not change that role (Manage Roles, or the role is above mine)",
    ExpiryOutcome.ROLE_GONE: "the role was deleted",
}


class Runner:
    """One run of one job, holding its lease as ``owner``."""

    def __init__(self, rest: DiscordRest, job: BulkJob, owner: str, stop: StopFlag, seconds: float) -> None:
        self.rest, self.job, self.owner, self.stop = rest, job, owner, stop
        self.deadline = time.monotonic() + seconds
        self.progress = Progress(rest)

    def _reason(self) -> str:
        who = f" for {self.job.requested_by_id}" if self.job.requested_by_id else ""
        return f"Guildhall timer: bulk job {self.job.pk}{who}"

    def out_of_time(self) -> bool:
        return self.stop.is_set() or time.monotonic() > self.deadline

    async def run(self) -> str:
        """Work until done, cancelled, failed or out of time; what became of the job."""
        try:
            outcome = await (self._add() if self.job.kind == BulkKind.ADD else self._clear())
        except BulkLeaseLost:
            logger.warning("bulk job %s: lease lost to another worker; stopping", self.job.pk)
            return "lease lost"
        if isinstance(outcome, str):  # "paused": this run's time is up
            await call(bulk_job_release, job_id=self.job.pk, owner=self.owner)
            await self.progress.show(self.job, force=True)
            return outcome
        state, detail = outcome
        if state == BulkState.CANCELLED:
            detail = self.job.detail  # who cancelled it
        self.job = await call(bulk_job_finish, job_id=self.job.pk, owner=self.owner, state=state, detail=detail)
        await self.progress.show(self.job, force=True)
        return str(self.job.state)

    async def _member_pages(self, after: int) -> AsyncIterator[list[dict[str, Any]]]:
        while True:
            page = await self.rest.http.get_members(self.job.guild_id, PAGE, after or None)
            if not page:
                return
            yield cast(list[dict[str, Any]], page)
            after = int(page[-1]["user"]["id"])
            if len(page) < PAGE:
                return

    def _holds(self, member: dict[str, Any], role_id: int) -> bool:
        # Every member holds @everyone (its id is the guild's), which Discord leaves out of their roles.
        held = role_id == self.job.guild_id or str(role_id) in member.get("roles", ())
        return held and not member["user"].get("bot")

    async def _count_holders(self, role_id: int) -> int:
        count = 0
        async for page in self._member_pages(0):
            count += sum(1 for m in page if self._holds(m, role_id))
            if self.out_of_time():
                break
        return count

    async def _add(self) -> tuple[str, str] | str:
        job = self.job
        holders_of = job.holders_of_role_id or job.role_id
        if job.total is None:
            total = await self._count_holders(holders_of)
            if self.out_of_time():
                return "paused"
            self.job = job = await call(bulk_job_total, job_id=job.pk, owner=self.owner, total=total)
            await self.progress.show(job, force=True)
        async for page in self._member_pages(job.cursor):
            holders = [m for m in page if self._holds(m, holders_of) and int(m["user"]["id"]) > self.job.cursor]
            timed = await call(
                bulk_members_with_live_timer,
                guild_id=job.guild_id,
                role_id=job.role_id,
                member_ids=[int(m["user"]["id"]) for m in holders],
            )
            for member in holders:
                if self.job.cancel_requested:
                    return BulkState.CANCELLED, ""
                if self.out_of_time():
                    return "paused"
                member_id = int(member["user"]["id"])
                if member_id in timed:
                    outcome, detail = "skip", ""
                elif str(job.role_id) in member.get("roles", ()):
                    outcome, detail = "apply", ""  # holds the role already (a conversion): no request needed
                else:
                    change = await role_add(self.rest.http, job.guild_id, member_id, job.role_id, self._reason())
                    if change.refusal in STOPPING_REFUSALS:
                        return BulkState.FAILED, f"{STOPPING_REFUSALS[change.refusal]} ({change.text})"
                    outcome = "apply" if change.done else "skip" if change.refusal == ExpiryOutcome.MEMBER_GONE else "fail"
                    detail = "" if change.done else f"<@{member_id}>: {change.text}"
                self.job = await call(
                    bulk_job_step, job_id=job.pk, owner=self.owner, member_id=member_id, outcome=outcome, detail=detail
                )
                await self.progress.show(self.job)
            self.job = await call(bulk_job_advance, job_id=job.pk, owner=self.owner, cursor=int(page[-1]["user"]["id"]))
            if self.job.cancel_requested:
                return BulkState.CANCELLED, ""
        return BulkState.DONE, ""

    async def _clear(self) -> tuple[str, str] | str:
        job = self.job
        if job.total is None:
            total = await call(bulk_clear_count, guild_id=job.guild_id, role_id=job.role_id)
            self.job = job = await call(bulk_job_total, job_id=job.pk, owner=self.owner, total=total)
            await self.progress.show(job, force=True)
        while True:
            batch = await call(
                bulk_clear_targets, guild_id=job.guild_id, role_id=job.role_id, after=self.job.cursor, limit=CLEAR_BATCH
            )
            if not batch:
                return BulkState.DONE, ""
            for member_id in batch:
                if self.job.cancel_requested:
                    return BulkState.CANCELLED, ""
                if self.out_of_time():
                    return "paused"
                change = await role_remove(self.rest.http, job.guild_id, member_id, job.role_id, self._reason())
                if change.refusal in STOPPING_REFUSALS and change.refusal != ExpiryOutcome.ROLE_GONE:
                    return BulkState.FAILED, f"{STOPPING_REFUSALS[change.refusal]} ({change.text})"
                # Gone from the server, or the role deleted: nothing holds it any more; the timer ends all the same.
                failed = change.refusal == ExpiryOutcome.FAILED_RETRY
                self.job = await call(
                    bulk_job_step,
                    job_id=job.pk,
                    owner=self.owner,
                    member_id=member_id,
                    outcome="fail" if failed else "apply",
                    detail=f"<@{member_id}>: {change.text}" if failed else "",
                )
                await self.progress.show(self.job)


def _run_seconds() -> float:
    # The run, its last requests and its hand-over must end well inside q2's task timeout.
    timeout = cast(int, settings.Q_CLUSTER["timeout"])
    return max(5.0, timeout - 20.0)


def _queue_run(job_id: int) -> None:
    from django_q.tasks import async_task

    async_task(RUN_TASK, job_id, task_name=f"bulk-job-{job_id}", group="guildhall.timers.bulk")


async def _work(job: BulkJob, owner: str, stop: StopFlag) -> str:
    try:
        async with DiscordRest() as rest:
            return await Runner(rest, job, owner, stop, _run_seconds()).run()
    finally:
        await call(connections.close_all)  # the ORM ran in asgiref's sync thread, which outlives this loop


def bulk_job_run(job_id: int) -> str:
    """Work a bulk job for one run (a django-q2 task); queues the next run if the job is not finished."""
    if not settings.DISCORD_TOKEN:
        logger.warning("DISCORD_TOKEN is not set: bulk job %s waits", job_id)
        return "no token"
    close_old_connections()
    owner = f"bulk:{os.getpid()}:{uuid.uuid4().hex[:8]}"
    job = bulk_job_claim(owner=owner, job_id=job_id)
    if job is None:
        current = bulk_job_get(job_id=job_id)
        return "not found" if current is None else f"not claimed ({current.state})"
    with stop_flag() as stop:
        result = asyncio.run(_work(job, owner, stop))
    if result == "paused":
        _queue_run(job_id)  # time is up for this run (or this worker is stopping), not for the job
    connections.close_all()
    logger.info("bulk job %s: %s", job_id, result)
    return result


async def _show(job: BulkJob) -> None:
    try:
        async with DiscordRest() as rest:
            await Progress(rest).show(job, force=True)
    finally:
        await call(connections.close_all)


def bulk_job_show(job_id: int) -> str:
    """Edit a job's progress message to its current state (a job cancelled before any worker took it)."""
    if not settings.DISCORD_TOKEN:
        return "no token"
    close_old_connections()
    job = bulk_job_get(job_id=job_id)
    if job is None:
        return "not found"
    asyncio.run(_show(job))
    connections.close_all()
    return str(job.state)


def bulk_jobs_resume() -> dict[str, Any]:
    """The one-minute watchdog: queue a run for every open job no worker holds (new, or its worker died)."""
    if not settings.DISCORD_TOKEN:
        return {"queued": [], "skipped": "DISCORD_TOKEN is not set"}
    close_old_connections()
    queued = bulk_jobs_claimable()
    for job_id in queued:
        _queue_run(job_id)
    return {"queued": queued}
