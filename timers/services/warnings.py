"""Which warning thresholds are still ahead of a timer, and when the next one falls due."""

from __future__ import annotations

from datetime import datetime, timedelta

from timers.models import TimedRole, TimerState


def warnings_arm(timer: TimedRole, thresholds: list[int], now: datetime) -> None:
    """Mark as dealt with every threshold the remaining time is already inside; arm the rest.

    Called whenever the remaining time changes (set, add, remove, resume): adding time
    past a threshold re-arms it, and a timer set for 30 minutes never gets its
    60-minute warning.
    """
    if timer.state == TimerState.ACTIVE and timer.expires_at is not None:
        remaining = timer.expires_at - now
    else:
        remaining = timer.paused_remaining or timedelta(0)
    timer.warnings_sent = sorted((t for t in thresholds if timedelta(minutes=t) >= remaining), reverse=True)
    warnings_schedule(timer, thresholds)


def warnings_schedule(timer: TimedRole, thresholds: list[int]) -> None:
    """Set ``next_warn_at`` from the largest threshold not yet dealt with (None if none or paused)."""
    pending = [t for t in thresholds if t not in timer.warnings_sent]
    if timer.state != TimerState.ACTIVE or timer.expires_at is None or not pending:
        timer.next_warn_at = None
    else:
        timer.next_warn_at = timer.expires_at - timedelta(minutes=max(pending))
