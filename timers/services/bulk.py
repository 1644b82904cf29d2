"""Bulk timer changes (``/timer bulk-add``, ``bulk-clear`` and the dashboard's): a job worked through in member-id order.

A job is created here, then worked by one worker at a time holding its lease
(``bulk_job_claim``); each member's change is one transaction with the job's cursor, so a
worker killed mid-way leaves the job exactly at the last member whose change committed, and
the next worker (after the lease runs out) goes on from there: no timer is set or cleared
twice. The role change on Discord happens before that transaction, so the one change a kill
can repeat is a role PUT or DELETE, which Discord treats as done already.

Members who already have a live timer for the role are skipped by a bulk add, as BoostMon's
users expect of a conversion: a running or paused timer is never shortened or reset by it.
"""

from __future__ import annotations

from datetime import datetime, timedelta

from django.conf import settings
from django.db import transaction
from django.db.models import Q
from django.utils import timezone

from config.database import lock_for_transaction, retry_transient
from timers.errors import TimerError
from timers.models import LIVE_STATES, BulkJob, BulkKind, BulkState, TimedRole
from timers.services.timed_roles import _check_duration, _check_role_allowed, timer_clear, timer_set

OPEN_STATES = (BulkState.PENDING, BulkState.RUNNING)
RUN_TASK = "bots.bulk.bulk_job_run"
SHOW_TASK = "bots.bulk.bulk_job_show"  # edits the progress message of a job cancelled before any worker held it


class BulkJobError(TimerError):
    """A bulk change was refused."""


class BulkJobNotFound(BulkJobError):
    http_status = 404


class BulkLeaseLost(BulkJobError):
    """The worker's claim on a job ran out and another worker holds it now: stop at once."""


def _lease_seconds() -> int:
    return settings.BULK_LEASE_SECONDS


def _queue_after_commit(task: str, job_id: int, name: str) -> None:
    from django_q.tasks import async_task

    transaction.on_commit(lambda: async_task(task, job_id, task_name=name, group="guildhall.timers.bulk"))


def bulk_job_run_later(job_id: int) -> None:
    """After the current transaction commits, queue the worker task that works the job."""
    _queue_after_commit(RUN_TASK, job_id, f"bulk-job-{job_id}")


@retry_transient()
def bulk_job_create(
    *,
    guild_id: int,
    kind: str,
    role_id: int,
    actor_id: int | None,
    seconds: int | None = None,
    holders_of_role_id: int | None = None,
    channel_id: int | None = None,
) -> BulkJob:
    """Start a bulk add (``role`` for ``seconds`` to the holders of ``holders_of_role_id``, default
    ``role`` itself) or a bulk clear (every live timer of ``role``); one job at a time per server."""
    if kind not in BulkKind.values:
        raise BulkJobError("A bulk change either adds (`bulk-add`) or clears (`bulk-clear`).")
    if kind == BulkKind.ADD:
        if not isinstance(seconds, int) or isinstance(seconds, bool):
            raise BulkJobError("A bulk add needs a duration.")
        _check_duration(timedelta(seconds=seconds))
        _check_role_allowed(guild_id, role_id)
    else:
        seconds, holders_of_role_id = None, None
    with transaction.atomic():
        lock_for_transaction("bulk", guild_id)  # two admins starting at once: one job, one refusal
        running = BulkJob.objects.filter(guild_id=guild_id, state__in=OPEN_STATES).order_by("pk").first()
        if running is not None:
            raise BulkJobError(
                f"Bulk job #{running.pk} ({running.get_kind_display()} of <@&{running.role_id}>) is still under way; "
                "wait for it or cancel it with `/timer bulk-cancel` first."
            )
        job = BulkJob.objects.create(
            guild_id=guild_id,
            kind=kind,
            role_id=role_id,
            seconds=seconds,
            holders_of_role_id=(holders_of_role_id or role_id) if kind == BulkKind.ADD else None,
            requested_by_id=actor_id,
            channel_id=channel_id,
        )
        bulk_job_run_later(job.pk)
    return job


def bulk_job_progress_message(*, job_id: int, channel_id: int, message_id: int) -> None:
    """Remember the chat message the worker edits with the job's progress."""
    BulkJob.objects.filter(pk=job_id).update(channel_id=channel_id, message_id=message_id)


@retry_transient()
def bulk_job_cancel(*, guild_id: int, job_id: int | None = None, actor_id: int | None = None) -> BulkJob:
    """Cancel the guild's open job (or ``job_id``): at once when no worker holds it, else at its next member."""
    now = timezone.now()
    with transaction.atomic():
        jobs = BulkJob.objects.select_for_update().filter(guild_id=guild_id, state__in=OPEN_STATES)
        job = (jobs.filter(pk=job_id) if job_id is not None else jobs.order_by("pk")).first()
        if job is None:
            which = f"Bulk job #{job_id} is not" if job_id is not None else "No bulk change is"
            raise BulkJobNotFound(f"{which} under way in this server.")
        job.cancel_requested = True
        job.detail = f"by <@{actor_id}>" if actor_id else "on the dashboard"
        if job.state == BulkState.PENDING or job.lease_until is None or job.lease_until < now:
            job.state, job.finished_at = BulkState.CANCELLED, now
            job.lease_until, job.lease_owner = None, ""
            if job.message_id:  # no worker will edit it: one task says it was cancelled
                _queue_after_commit(SHOW_TASK, job.pk, f"bulk-show-{job.pk}")
        job.save()
    return job


def _claimable(now: datetime) -> Q:
    return Q(state__in=OPEN_STATES) & (Q(lease_until__isnull=True) | Q(lease_until__lt=now))


def bulk_job_claim(*, owner: str, job_id: int | None = None, now: datetime | None = None) -> BulkJob | None:
    """Take the lease on ``job_id`` (or the oldest open job nobody holds); None when it is held or finished."""
    now = now or timezone.now()
    candidates = BulkJob.objects.filter(_claimable(now))
    if job_id is not None:
        candidates = candidates.filter(pk=job_id)
    for pk in candidates.order_by("created_at").values_list("pk", flat=True)[:5]:
        lease = {"lease_owner": owner, "lease_until": now + timedelta(seconds=_lease_seconds()), "updated_at": now}
        # A conditional UPDATE: of several workers claiming at once, exactly one matches.
        if BulkJob.objects.filter(_claimable(now), pk=pk).update(state=BulkState.RUNNING, **lease) == 1:
            return BulkJob.objects.get(pk=pk)
    return None


def bulk_jobs_claimable(*, now: datetime | None = None) -> list[int]:
    """Open jobs no worker holds (a new one not picked up yet, or a dead worker's), oldest first."""
    rows = BulkJob.objects.filter(_claimable(now or timezone.now())).order_by("created_at")
    return list(rows.values_list("pk", flat=True)[:50])


def _held(job_id: int, owner: str, now: datetime) -> BulkJob:
    job = BulkJob.objects.select_for_update().get(pk=job_id)
    if job.lease_owner != owner or job.state != BulkState.RUNNING:
        raise BulkLeaseLost(f"bulk job {job_id} is no longer held by {owner}")
    job.lease_until = now + timedelta(seconds=_lease_seconds())
    return job


@retry_transient()
def bulk_job_total(*, job_id: int, owner: str, total: int) -> BulkJob:
    """Record how many members the job will go through (counted once, before the first change)."""
    now = timezone.now()
    with transaction.atomic():
        job = _held(job_id, owner, now)
        job.total = total
        job.save(update_fields=["total", "lease_until", "updated_at"])
    return job


@retry_transient()
def bulk_job_advance(*, job_id: int, owner: str, cursor: int) -> BulkJob:
    """Move the cursor past members that needed nothing (a page's non-holders) and renew the lease."""
    now = timezone.now()
    with transaction.atomic():
        job = _held(job_id, owner, now)
        job.cursor = max(job.cursor, cursor)
        job.save(update_fields=["cursor", "lease_until", "updated_at"])
    return job


@retry_transient()
def bulk_job_step(*, job_id: int, owner: str, member_id: int, outcome: str, detail: str = "") -> BulkJob:
    """Record one member: ``apply`` sets (add) or clears (clear) the timer, ``skip`` and ``fail`` only count.

    The change, the counts and the cursor commit together; a member at or before the cursor
    was done already (by a worker that died after committing) and changes nothing.
    """
    if outcome not in ("apply", "skip", "fail"):
        raise ValueError(outcome)
    now = timezone.now()
    with transaction.atomic():
        job = _held(job_id, owner, now)
        if member_id <= job.cursor:
            job.save(update_fields=["lease_until", "updated_at"])
            return job
        note = f"bulk job {job.pk}"
        if outcome == "apply" and job.kind == BulkKind.ADD:
            live = TimedRole.objects.filter(
                guild_id=job.guild_id, member_id=member_id, role_id=job.role_id, state__in=LIVE_STATES
            )
            if live.exists():  # given a timer since the worker looked: it keeps it
                outcome = "skip"
            else:
                timer_set(
                    guild_id=job.guild_id,
                    member_id=member_id,
                    role_id=job.role_id,
                    duration=timedelta(seconds=job.seconds or 0),
                    actor_id=job.requested_by_id,
                    channel_id=job.channel_id,
                    now=now,
                    detail=note,
                )
        elif outcome == "apply":
            live = TimedRole.objects.filter(
                guild_id=job.guild_id, member_id=member_id, role_id=job.role_id, state__in=LIVE_STATES
            )
            if live.exists():
                timer_clear(
                    guild_id=job.guild_id, member_id=member_id, role_id=job.role_id, actor_id=job.requested_by_id, detail=note
                )
            else:  # it ended (expired, cleared by hand) since the worker looked
                outcome = "skip"
        counter = {"apply": "done_count", "skip": "skipped_count", "fail": "failed_count"}[outcome]
        setattr(job, counter, getattr(job, counter) + 1)
        job.cursor = member_id
        if detail and not job.cancel_requested:  # the last failure, unless it already says who cancelled
            job.detail = detail[:300]
        job.save(update_fields=[counter, "cursor", "detail", "lease_until", "updated_at"])
    return job


@retry_transient()
def bulk_job_finish(*, job_id: int, owner: str, state: str, detail: str = "") -> BulkJob:
    """End a job (done, cancelled or failed with the reason) and let go of its lease."""
    if state not in (BulkState.DONE, BulkState.CANCELLED, BulkState.FAILED):
        raise ValueError(state)
    now = timezone.now()
    with transaction.atomic():
        job = _held(job_id, owner, now)
        job.state, job.finished_at = state, now
        job.lease_until, job.lease_owner = None, ""
        if detail:
            job.detail = detail[:300]
        processed = job.done_count + job.skipped_count + job.failed_count
        if state == BulkState.DONE:
            job.total = processed  # members who joined or left while it ran
        job.save()
    return job


def bulk_job_release(*, job_id: int, owner: str) -> bool:
    """Give the lease back without finishing (the worker is stopping, or its time is up): another takes over."""
    released = BulkJob.objects.filter(pk=job_id, lease_owner=owner, state=BulkState.RUNNING).update(
        lease_until=None, lease_owner="", updated_at=timezone.now()
    )
    return released == 1
