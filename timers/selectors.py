"""Reads for timed roles; the due-work queries each match one partial index."""

from __future__ import annotations

from datetime import datetime

from django.db.models import QuerySet

from timers.models import LIVE_STATES, AllowedRole, RoleReport, TimedRole, TimerState


def timers_due_expiry(*, now: datetime) -> QuerySet[TimedRole]:
    """Active timers whose time is up, oldest first (index ``timer_due_expiry``)."""
    return TimedRole.objects.filter(state=TimerState.ACTIVE, expires_at__lte=now).order_by("expires_at")


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
    return RoleReport.objects.filter(next_run_at__lte=now).order_by("next_run_at")


def timers_live(*, guild_id: int, member_id: int | None = None, role_id: int | None = None) -> QuerySet[TimedRole]:
    """Running and paused timers, soonest expiry first (paused ones last)."""
    rows = TimedRole.objects.filter(guild_id=guild_id, state__in=LIVE_STATES)
    if member_id is not None:
        rows = rows.filter(member_id=member_id)
    if role_id is not None:
        rows = rows.filter(role_id=role_id)
    return rows.order_by("state", "expires_at", "pk")


def allowed_roles(*, guild_id: int) -> list[int]:
    return list(AllowedRole.objects.filter(guild_id=guild_id).order_by("pk").values_list("role_id", flat=True))


def reports_list(*, guild_id: int) -> QuerySet[RoleReport]:
    return RoleReport.objects.filter(guild_id=guild_id).order_by("pk")
