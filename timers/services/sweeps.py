"""What the sweep claims and records. Discord calls happen between a claim and its record,
outside any transaction (the timer engine in bots/ makes them).

A claim sets a lease on the rows: other workers skip them until the lease ends, so any
number of workers can sweep at once (SKIP LOCKED on PostgreSQL keeps them from waiting on
each other; SQLite serializes writers anyway). A worker that dies leaves its lease to
run out, and the next sweep does the work again; role removal is idempotent and posts
carry nonces, so a repeat changes nothing on Discord.
"""

from __future__ import annotations

from collections import defaultdict
from dataclasses import dataclass
from datetime import datetime, timedelta

from django.conf import settings
from django.db import transaction
from django.db.models import Q, QuerySet
from django.utils import timezone

from config.database import retry_transient
from guilds.services.log import LogLine, log_record_many
from timers.models import ExpiryOutcome, RoleReport, TimedRole, TimerEvent, TimerEventKind, TimerState
from timers.selectors import reports_due, timers_due_expiry, timers_due_warning
from timers.services.guild_config import timer_settings_get
from timers.services.warnings import warnings_schedule

# What the activity log says of an expiry, by outcome; the failures are flagged.
_EXPIRY_LOG: dict[str, tuple[str, bool]] = {
    ExpiryOutcome.REMOVED: ("ran out; the role was removed", False),
    ExpiryOutcome.MEMBER_GONE: ("ran out while they were away from the server", False),
    ExpiryOutcome.ROLE_GONE: ("ran out, but the role no longer exists", True),
    ExpiryOutcome.FORBIDDEN: (
        "ran out, but I may not remove the role (missing Manage Roles, or it is above my highest role)",
        True,
    ),
    ExpiryOutcome.FAILED: ("ran out, but removing the role failed after every retry", True),
}


def _expiry_line(timer: TimedRole, outcome: str, detail: str) -> LogLine:
    what, failed = _EXPIRY_LOG.get(outcome, (f"ran out ({outcome})", True))
    text = f"<@{timer.member_id}>'s <@&{timer.role_id}> timer {what}" + (f": {detail[:200]}" if failed and detail else "")
    kind = "timer.expire_failed" if failed else "timer.expire"
    return LogLine(timer.guild_id, kind, text, member_id=timer.member_id, role_id=timer.role_id, failed=failed)


def _lease() -> timedelta:
    return timedelta(seconds=settings.SWEEP_LEASE_SECONDS)


MAX_ATTEMPTS = 6
# Expiries and warnings claim a row through columns of their own, so that a warning being
# posted or backing off never holds up the same row's expiry.
EXPIRY_LEASE = ("lease_until", "lease_owner")
WARNING_LEASE = ("warn_lease_until", "warn_lease_owner")


@dataclass(frozen=True)
class WarningClaim:
    """Claimed timers with a warning due, and each guild's thresholds as read at the claim.

    The engine decides what to post from these thresholds and hands the same ones to
    :func:`sweep_record_warnings`, so that what is recorded is what was decided.
    """

    timers: list[TimedRole]
    thresholds: dict[int, list[int]]


def _claim(rows: QuerySet[TimedRole], *, lease: tuple[str, str], owner: str, now: datetime, limit: int) -> list[TimedRole]:
    until, by = lease
    free = Q(**{f"{until}__isnull": True}) | Q(**{f"{until}__lte": now})
    with transaction.atomic():
        ids = list(rows.filter(free).select_for_update(skip_locked=True).values_list("pk", flat=True)[:limit])
        if not ids:
            return []
        TimedRole.objects.filter(pk__in=ids).update(**{until: now + _lease(), by: owner})
    return list(TimedRole.objects.filter(pk__in=ids, **{by: owner}).order_by("pk"))


@retry_transient()
def sweep_claim_expiries(
    *, owner: str, now: datetime | None = None, limit: int = 200, timer_ids: list[int] | None = None
) -> list[TimedRole]:
    """Claim active timers whose time is up (those failing to expire wait out their back-off lease).

    ``timer_ids`` narrows the claim to those timers (the bot expiring one at once).
    """
    now = now or timezone.now()
    return _claim(timers_due_expiry(now=now, timer_ids=timer_ids), lease=EXPIRY_LEASE, owner=owner, now=now, limit=limit)


@retry_transient()
def sweep_claim_warnings(*, owner: str, now: datetime | None = None, limit: int = 200) -> WarningClaim:
    """Claim active timers with a warning due, with their guilds' thresholds."""
    now = now or timezone.now()
    timers = _claim(timers_due_warning(now=now), lease=WARNING_LEASE, owner=owner, now=now, limit=limit)
    thresholds = {g: list(timer_settings_get(g).warning_minutes) for g in sorted({t.guild_id for t in timers})}
    return WarningClaim(timers=timers, thresholds=thresholds)


def warning_threshold_due(timer: TimedRole, thresholds: list[int], now: datetime) -> int | None:
    """The most urgent unsent threshold the timer has reached (None if none)."""
    reached = [t for t in thresholds if t not in timer.warnings_sent and timer.ends_at - timedelta(minutes=t) <= now]
    return min(reached) if reached else None


@retry_transient()
def sweep_record_warnings(
    *, timer_ids: list[int], thresholds: dict[int, list[int]], owner: str, now: datetime | None = None
) -> dict[int, int | None]:
    """Mark every threshold each claimed timer has reached as sent and release the claims.

    ``thresholds`` are the ones the claim returned, by guild: the same that decided what
    was posted (a threshold added since is left for a later warning, not marked sent
    unposted). The next warning is scheduled from the guild's current thresholds.

    Returns, per timer, the threshold that was announced (None when there was nothing to
    announce any more: time was added, or a worker that took the claim over got there
    first). A claim that ran out is still recorded, so a slow batch can't be re-claimed
    forever without anyone finishing it.
    """
    now = now or timezone.now()
    current: dict[int, list[int]] = {}
    recorded: dict[int, int | None] = {}
    with transaction.atomic():
        timers = TimedRole.objects.select_for_update().filter(pk__in=timer_ids).order_by("pk")
        events = []
        for timer in timers:
            decided = thresholds.get(timer.guild_id, [])
            threshold = warning_threshold_due(timer, decided, now) if timer.state == TimerState.ACTIVE else None
            if threshold is not None:
                reached = {t for t in decided if timer.ends_at - timedelta(minutes=t) <= now}
                timer.warnings_sent = sorted(set(timer.warnings_sent) | reached, reverse=True)
                events.append(TimerEvent(timer=timer, kind=TimerEventKind.WARN, detail=f"{threshold} min"))
            if timer.guild_id not in current:
                current[timer.guild_id] = list(timer_settings_get(timer.guild_id).warning_minutes)
            warnings_schedule(timer, current[timer.guild_id])
            if timer.warn_lease_owner == owner:
                timer.warn_lease_until, timer.warn_lease_owner = None, ""
            timer.updated_at = now
            timer.save(update_fields=["warnings_sent", "next_warn_at", "warn_lease_until", "warn_lease_owner", "updated_at"])
            recorded[timer.pk] = threshold
        TimerEvent.objects.bulk_create(events)
    return recorded


@retry_transient()
def sweep_record_expiries(*, outcomes: list[tuple[int, str, str]], owner: str, now: datetime | None = None) -> set[int]:
    """Store ``(timer_id, outcome, detail)`` for claimed timers; failures to retry get a back-off lease.

    Returns the ids not recorded: time was added meanwhile (the caller puts the role
    back), or another worker recorded it first. A claim that ran out is still recorded
    when the timer is still due, so a slow batch is never re-claimed without end.
    """
    now = now or timezone.now()
    by_id = {timer_id: (outcome, detail) for timer_id, outcome, detail in outcomes}
    with transaction.atomic():
        timers = list(TimedRole.objects.select_for_update().filter(pk__in=list(by_id)).order_by("pk"))
        unrecorded = set(by_id) - {t.pk for t in timers}
        events = []
        log_lines = []
        changes: dict[tuple[tuple[str, object], ...], list[int]] = defaultdict(list)  # new values -> the rows that get them
        for timer in timers:
            outcome, detail = by_id[timer.pk]
            if outcome not in ExpiryOutcome.values:
                raise ValueError(f"unknown expiry outcome {outcome!r}")
            mine = timer.lease_owner == owner
            if timer.state != TimerState.ACTIVE or timer.ends_at > now:
                unrecorded.add(timer.pk)
                if not mine:
                    continue
                change: dict[str, object] = {"lease_until": None, "lease_owner": ""}
            elif outcome == ExpiryOutcome.FAILED_RETRY and not mine:
                unrecorded.add(timer.pk)  # the worker holding the claim now decides on retries
                continue
            elif outcome == ExpiryOutcome.FAILED_RETRY and timer.attempts + 1 < MAX_ATTEMPTS:
                attempts = timer.attempts + 1
                # Back off 30 s, 1, 2, 4, 8 min: the lease keeps every worker away until then.
                change = {
                    "attempts": attempts,
                    "outcome": outcome,
                    "outcome_detail": detail[:300],
                    "lease_until": now + timedelta(seconds=30 * 2 ** (attempts - 1)),
                }
            else:
                if outcome == ExpiryOutcome.FAILED_RETRY:
                    outcome = ExpiryOutcome.FAILED  # out of attempts
                change = {
                    "state": TimerState.EXPIRED,
                    "ended_at": now,
                    "outcome": outcome,
                    "outcome_detail": detail[:300],
                    "next_warn_at": None,
                    "lease_until": None,
                    "lease_owner": "",
                }
                events.append(TimerEvent(timer=timer, kind=TimerEventKind.EXPIRE, detail=outcome))
                log_lines.append(_expiry_line(timer, outcome, detail))
            changes[tuple(sorted(change.items()))].append(timer.pk)
        # A batch mostly shares its new values (200 roles removed alike): one UPDATE per distinct
        # change. bulk_update's CASE per row and field took ~0.2 s of Python per batch of 200,
        # which held the engine under 300 expiries/s (bench/sweep.py).
        for values, ids in changes.items():
            TimedRole.objects.filter(pk__in=ids).update(**dict(values), updated_at=now)
        TimerEvent.objects.bulk_create(events)
        log_record_many(log_lines)  # one INSERT for the batch: the sweep expires hundreds a second
    return unrecorded


@retry_transient()
def sweep_release(*, timer_ids: list[int], owner: str) -> int:
    """Give claimed rows back without acting on them (on shutdown), both kinds of claim."""
    with transaction.atomic():
        expiries = TimedRole.objects.filter(pk__in=timer_ids, lease_owner=owner).update(lease_until=None, lease_owner="")
        warnings = TimedRole.objects.filter(pk__in=timer_ids, warn_lease_owner=owner).update(
            warn_lease_until=None, warn_lease_owner=""
        )
    return expiries + warnings


@retry_transient()
def sweep_claim_reports(*, now: datetime | None = None, limit: int = 20) -> list[RoleReport]:
    """Claim due role reports by moving their next run on; the caller posts them."""
    now = now or timezone.now()
    with transaction.atomic():
        due = list(reports_due(now=now).select_for_update(skip_locked=True)[:limit])
        for report in due:
            report.last_run_at = now
            report.next_run_at = now + timedelta(minutes=report.interval_minutes)
        RoleReport.objects.bulk_update(due, ["last_run_at", "next_run_at"])
    return due
