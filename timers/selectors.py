"""Reads for timed roles; the due-work queries each match one partial index."""

from __future__ import annotations

from collections.abc import Iterable
from datetime import datetime

from django.db.models import Min, Q, QuerySet

from timers.models import LIVE_STATES, AllowedRole, BulkJob, RoleReport, SweepBaton, TimedRole, TimerEvent, TimerState


def timers_due_expiry(*, now: datetime, timer_ids: Iterable[int] | None = None) -> QuerySet[TimedRole]:
    """Active timers whose time is up, oldest first (index ``timer_due_expiry``); optionally only ``timer_ids``."""
    rows = TimedRole.objects.filter(state=TimerState.ACTIVE, expires_at__lte=now)
    if timer_ids is not None:
        rows = rows.filter(pk__in=list(timer_ids))
    return rows.order_by("expires_at")


def timers_due_warning(*, now: datetime) -> QuerySet[TimedRole]:
    """Active timers with a warning due, oldest first (index ``timer_due_warning``)."""
    return TimedRole.objects.filter(state=TimerState.ACTIVE, next_warn_at__isnull=False, next_warn_at__lte=now).order_by(
        "next_warn_at"
    )


def timers_due_resume(*, now: datetime) -> QuerySet[TimedRole]:
    """Paused timers whose pause deadline has passed (index ``timer_due_resume``)."""
    return TimedRole.objects.filter(state=TimerState.PAUSED, pause_until__isnull=False, pause_until__lte=now).order_by(
        "pause_until"
    )


def reports_due(*, now: datetime) -> QuerySet[RoleReport]:
    """Role reports whose next run has come, oldest first (index ``report_due``)."""
    return RoleReport.objects.filter(next_run_at__lte=now).order_by("next_run_at")


def timer_work_next_due() -> datetime | None:
    """The earliest time any timer work falls due: four index probes, no scan."""
    probes = [
        TimedRole.objects.filter(state=TimerState.ACTIVE).aggregate(at=Min("expires_at"))["at"],
        TimedRole.objects.filter(state=TimerState.ACTIVE, next_warn_at__isnull=False).aggregate(at=Min("next_warn_at"))["at"],
        TimedRole.objects.filter(state=TimerState.PAUSED, pause_until__isnull=False).aggregate(at=Min("pause_until"))["at"],
        RoleReport.objects.aggregate(at=Min("next_run_at"))["at"],
    ]
    found = [p for p in probes if p is not None]
    return min(found) if found else None


def timer_get(*, timer_id: int) -> TimedRole | None:
    """One timer by id, whatever its state (None when there is none)."""
    return TimedRole.objects.filter(pk=timer_id).first()


def timers_live(*, guild_id: int, member_id: int | None = None, role_id: int | None = None) -> QuerySet[TimedRole]:
    """Running and paused timers, soonest expiry first (paused ones last)."""
    rows = TimedRole.objects.filter(guild_id=guild_id, state__in=LIVE_STATES)
    if member_id is not None:
        rows = rows.filter(member_id=member_id)
    if role_id is not None:
        rows = rows.filter(role_id=role_id)
    return rows.order_by("state", "expires_at", "pk")


def timers_shown(*, guild_id: int, member_id: int | None = None, role_id: int | None = None, limit: int) -> list[TimedRole]:
    """At most ``limit`` live timers, as :func:`timers_live` orders them (for a chat answer or a report)."""
    return list(timers_live(guild_id=guild_id, member_id=member_id, role_id=role_id)[:limit])


def timer_has_time_left(*, guild_id: int, member_id: int, role_id: int, now: datetime) -> bool:
    """True when the member's live timer for the role is paused or ends after ``now``."""
    not_due = Q(expires_at__isnull=True) | Q(expires_at__gt=now)
    return timers_live(guild_id=guild_id, member_id=member_id, role_id=role_id).filter(not_due).exists()


def timers_of_role(*, guild_id: int, role_id: int, state: str) -> QuerySet[TimedRole]:
    """A role's timers in one state (index ``timer_guild_role_state``)."""
    return TimedRole.objects.filter(guild_id=guild_id, role_id=role_id, state=state)


def allowed_roles(*, guild_id: int) -> list[int]:
    return list(AllowedRole.objects.filter(guild_id=guild_id).order_by("pk").values_list("role_id", flat=True))


def reports_list(*, guild_id: int) -> QuerySet[RoleReport]:
    return RoleReport.objects.filter(guild_id=guild_id).order_by("pk")


def reports_shown(*, guild_id: int, limit: int) -> list[RoleReport]:
    """At most ``limit`` of the guild's reports, oldest first (for a chat answer)."""
    return list(reports_list(guild_id=guild_id)[:limit])


def sweep_baton_holder(*, name: str) -> str | None:
    """Who holds the engine's baton now ('' when free, None before any run took it)."""
    return SweepBaton.objects.filter(name=name).values_list("holder", flat=True).first()


def reconcile_plan(*, guild_id: int) -> tuple[dict[int, set[int]], set[int]]:
    """(member -> the roles of their live timers, the guild's timed roles) for reconciliation.

    The timed roles are the allowed-role list, or, without one, every role a live timer
    grants: holders of these with no live timer are reported.
    """
    live = TimedRole.objects.filter(guild_id=guild_id, state__in=LIVE_STATES)
    members: dict[int, set[int]] = {}
    for member_id, role_id in live.values_list("member_id", "role_id"):
        members.setdefault(member_id, set()).add(role_id)
    roles = set(AllowedRole.objects.filter(guild_id=guild_id).values_list("role_id", flat=True))
    return members, roles | {r for held in members.values() for r in held}


def timer_last_event(*, timer_id: int) -> TimerEvent | None:
    """A timer's latest event (index ``timer_event_recent``)."""
    return TimerEvent.objects.filter(timer_id=timer_id).order_by("-created_at", "-pk").first()


# --- bulk jobs (timers.services.bulk) ---------------------------------------------------------
def bulk_job_get(*, job_id: int) -> BulkJob | None:
    return BulkJob.objects.filter(pk=job_id).first()


def bulk_jobs_recent(*, guild_id: int | None = None) -> QuerySet[BulkJob]:
    """Bulk jobs, newest first (index ``bulk_job_guild_recent`` per guild)."""
    rows = BulkJob.objects.all() if guild_id is None else BulkJob.objects.filter(guild_id=guild_id)
    return rows.order_by("-id")


def bulk_members_with_live_timer(*, guild_id: int, role_id: int, member_ids: Iterable[int]) -> set[int]:
    """Which of ``member_ids`` hold a live timer for the role (a bulk add leaves them as they are)."""
    rows = TimedRole.objects.filter(guild_id=guild_id, role_id=role_id, state__in=LIVE_STATES, member_id__in=list(member_ids))
    return set(rows.values_list("member_id", flat=True))


def bulk_clear_targets(*, guild_id: int, role_id: int, after: int, limit: int) -> list[int]:
    """The next members after ``after`` (member-id order) with a live timer for the role."""
    rows = TimedRole.objects.filter(guild_id=guild_id, role_id=role_id, state__in=LIVE_STATES, member_id__gt=after)
    return list(rows.order_by("member_id").values_list("member_id", flat=True)[:limit])


def bulk_clear_count(*, guild_id: int, role_id: int, after: int = 0) -> int:
    """How many live timers of the role a bulk clear has left (index ``timer_guild_role_state``)."""
    return TimedRole.objects.filter(guild_id=guild_id, role_id=role_id, state__in=LIVE_STATES, member_id__gt=after).count()
