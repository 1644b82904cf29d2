"""q2 task for the alerts (scheduled every minute in ops/schedules.py)."""

from __future__ import annotations

from django.db import close_old_connections

from ops.alerts.services import alerts_evaluate


def alerts_evaluate_scheduled() -> str:
    """Evaluate every alert once; say which started or cleared."""
    close_old_connections()
    transitions = alerts_evaluate()
    return ", ".join(f"{t.name} {t.kind}" for t in transitions) or "no change"
