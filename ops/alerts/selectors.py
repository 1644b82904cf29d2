"""Reads of the alerts' state for the Status page, /health/ready and /metrics."""

from __future__ import annotations

from django.db.models import QuerySet

from ops.models import AlertState, DrillResult


def alerts_firing() -> QuerySet[AlertState]:
    """The alerts firing now, oldest first (a probe of the partial index alert_state_firing)."""
    return AlertState.objects.filter(firing_since__isnull=False).order_by("firing_since", "name")


def alerts_cleared_recent(limit: int = 10) -> QuerySet[AlertState]:
    """The alerts that cleared most recently and are quiet now."""
    return AlertState.objects.filter(firing_since__isnull=True, cleared_at__isnull=False).order_by("-cleared_at")[:limit]


def drills_recent(limit: int = 10) -> QuerySet[DrillResult]:
    """The latest restore drill results, newest first (an index probe on drill_result_recent)."""
    return DrillResult.objects.order_by("-started_at")[:limit]
