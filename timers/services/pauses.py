"""Pausing and resuming timed roles, for one member or a whole role, and at a pause's deadline.

pause freezes the remainder (optionally until a deadline, after which the sweep resumes
it by itself); resume makes expiry = now + remainder, a new run that starts clean.
"""

from __future__ import annotations

from collections.abc import Callable
from datetime import datetime, timedelta

from django.db import transaction
from django.db.models import QuerySet
from django.utils import timezone

from config.database import retry_transient
from guilds.services.log import LogLine, by, log_record_many
from timers.durations import format_duration
from timers.errors import TimerError
from timers.models import PauseKind, TimedRole, TimerEvent, TimerEventKind, TimerState
from timers.selectors import timers_due_resume, timers_of_role
from timers.services.timed_roles import (
    BATCH,
    TimerChange,
    _activate,
    _check_duration,
    _event,
    _log,
    _require_live,
    _thresholds,
)

_PAUSE_FIELDS = ["state", "paused_remaining", "expires_at", "next_warn_at", "pause_until", "pause_kind", "updated_at"]
_RESUME_FIELDS = [
    "state",
    "expires_at",
    "paused_remaining",
    "pause_until",
    "pause_kind",
    "warnings_sent",
    "next_warn_at",
    "lease_until",
    "lease_owner",
    "warn_lease_until",
    "warn_lease_owner",
    "attempts",
    "outcome",
    "outcome_detail",
    "updated_at",
]


def _pause(timer: TimedRole, now: datetime, duration: timedelta | None, kind: str) -> None:
    timer.state = TimerState.PAUSED
    timer.paused_remaining = timer.ends_at - now
    timer.expires_at = None
    timer.next_warn_at = None
    timer.pause_until = now + duration if duration is not None else None
    timer.pause_kind = kind


@retry_transient()
def timer_pause(
    *,
    guild_id: int,
    member_id: int,
    role_id: int,
    actor_id: int | None,
    duration: timedelta | None = None,
    now: datetime | None = None,
) -> TimerChange:
    """Freeze the remaining time; with ``duration`` it resumes by itself after that long."""
    if duration is not None:
        _check_duration(duration)
    now = now or timezone.now()
    with transaction.atomic():
        timer = _require_live(guild_id, member_id, role_id)
        if timer.state == TimerState.PAUSED:
            raise TimerError("That timer is already paused.")
        if timer.ends_at <= now:
            raise TimerError("That timer has already run out.")
        _pause(timer, now, duration, PauseKind.MEMBER)
        timer.save()
        _event(timer, TimerEventKind.PAUSE, actor_id, duration)
        _log(timer, "pause", f"paused for {format_duration(duration)}" if duration is not None else "paused", actor_id)
    return TimerChange(timer=timer)


@retry_transient()
def timer_resume(
    *, guild_id: int, member_id: int, role_id: int, actor_id: int | None, now: datetime | None = None
) -> TimerChange:
    """Start the clock again: expiry = now + remainder."""
    now = now or timezone.now()
    with transaction.atomic():
        timer = _require_live(guild_id, member_id, role_id)
        if timer.state != TimerState.PAUSED:
            raise TimerError("That timer isn't paused.")
        _activate(timer, now + timer.frozen_remaining, now)
        timer.save()
        _event(timer, TimerEventKind.RESUME, actor_id)
        _log(timer, "resume", "resumed", actor_id)
    return TimerChange(timer=timer)


ChunkApply = Callable[[list[TimedRole]], None]


@retry_transient()
def _locked_chunk(rows: QuerySet[TimedRole], after_pk: int, apply: ChunkApply) -> int | None:
    """Lock the next chunk of ``rows`` after ``after_pk``, apply the change; its last pk (None when done).

    The locks are waited for, not skipped: a one-shot admin action must cover every
    timer, and a row locked by a warning being recorded is free again in milliseconds.
    Each chunk is its own transaction (retried alone), so the counts stay exact.
    """
    with transaction.atomic():
        chunk = list(rows.filter(pk__gt=after_pk).select_for_update().order_by("pk")[:BATCH])
        if not chunk:
            return None
        apply(chunk)
    return chunk[-1].pk


def _each_chunk(rows: QuerySet[TimedRole], apply: ChunkApply) -> None:
    """Walk ``rows`` by primary key, so that each row is visited once whatever changed before it."""
    last_pk: int | None = 0
    while last_pk is not None:
        last_pk = _locked_chunk(rows, last_pk, apply)


def timer_pause_all(
    *, guild_id: int, role_id: int, actor_id: int | None, duration: timedelta | None = None, now: datetime | None = None
) -> int:
    """Pause every running timer for a role (a global pause); return exactly how many."""
    if duration is not None:
        _check_duration(duration)
    at = now or timezone.now()
    paused = 0

    def pause_chunk(chunk: list[TimedRole]) -> None:
        nonlocal paused
        for timer in chunk:
            _pause(timer, at, duration, PauseKind.GLOBAL)
            timer.updated_at = at  # bulk_update does not apply auto_now
        TimedRole.objects.bulk_update(chunk, _PAUSE_FIELDS)
        TimerEvent.objects.bulk_create(
            TimerEvent(timer=t, kind=TimerEventKind.PAUSE, actor_id=actor_id, detail="pause-all") for t in chunk
        )
        paused += len(chunk)
        span = f" for {format_duration(duration)}" if duration is not None else ""
        text = f"{len(chunk)} <@&{role_id}> timer(s) paused{span}{by(actor_id)} (pause-all)"
        log_record_many([LogLine(guild_id, "timer.pause_all", text, actor_id=actor_id, role_id=role_id)])

    _each_chunk(
        timers_of_role(guild_id=guild_id, role_id=role_id, state=TimerState.ACTIVE).filter(expires_at__gt=at), pause_chunk
    )
    return paused


def timer_resume_all(*, guild_id: int, role_id: int, actor_id: int | None, now: datetime | None = None) -> int:
    """Resume the timers a pause-all froze (members' own pauses stay); return exactly how many."""
    at = now or timezone.now()
    resumed = 0
    thresholds = _thresholds(guild_id)

    def resume_chunk(chunk: list[TimedRole]) -> None:
        nonlocal resumed
        for timer in chunk:
            _resume_in_place(timer, at, at, thresholds)
        TimedRole.objects.bulk_update(chunk, _RESUME_FIELDS)
        TimerEvent.objects.bulk_create(
            TimerEvent(timer=t, kind=TimerEventKind.RESUME, actor_id=actor_id, detail="resume-all") for t in chunk
        )
        resumed += len(chunk)
        text = f"{len(chunk)} <@&{role_id}> timer(s) resumed{by(actor_id)} (resume-all)"
        log_record_many([LogLine(guild_id, "timer.resume_all", text, actor_id=actor_id, role_id=role_id)])

    frozen = timers_of_role(guild_id=guild_id, role_id=role_id, state=TimerState.PAUSED).filter(pause_kind=PauseKind.GLOBAL)
    _each_chunk(frozen, resume_chunk)
    return resumed


def _resume_in_place(timer: TimedRole, start: datetime, now: datetime, thresholds: list[int]) -> None:
    """Run the remainder from ``start`` (a new run); ``now`` stamps the row."""
    _activate(timer, start + timer.frozen_remaining, start, thresholds)
    timer.updated_at = now


@retry_transient()
def timer_auto_resume(*, now: datetime | None = None, batch: int = BATCH) -> int:
    """Resume paused timers whose pause deadline has passed; return how many.

    Rows are claimed with SKIP LOCKED on PostgreSQL, so several workers split the work
    and none waits on another or on a member's command.
    """
    now = now or timezone.now()
    with transaction.atomic():
        chunk = list(timers_due_resume(now=now).select_for_update(skip_locked=True)[:batch])
        thresholds_by_guild: dict[int, list[int]] = {}
        for timer in chunk:
            if timer.guild_id not in thresholds_by_guild:
                thresholds_by_guild[timer.guild_id] = _thresholds(timer.guild_id)
            # The remainder runs from the deadline, not from whenever the sweep got here.
            deadline = timer.pause_until or now  # the selector only finds timers with a deadline
            _resume_in_place(timer, deadline, now, thresholds_by_guild[timer.guild_id])
        TimedRole.objects.bulk_update(chunk, _RESUME_FIELDS)
        TimerEvent.objects.bulk_create(TimerEvent(timer=t, kind=TimerEventKind.AUTO_RESUME) for t in chunk)
        log_record_many(
            LogLine(
                t.guild_id,
                "timer.auto_resume",
                f"<@{t.member_id}>'s <@&{t.role_id}> timer resumed at the end of its pause",
                member_id=t.member_id,
                role_id=t.role_id,
            )
            for t in chunk
        )
    return len(chunk)
