"""Ending timers whose time is up, with the outcome of taking the role away."""

from __future__ import annotations

from datetime import datetime

from django.db import transaction
from django.utils import timezone

from config.database import retry_transient
from timers.models import ExpiryOutcome, TimedRole, TimerEvent, TimerEventKind, TimerState


@retry_transient()
def timer_expire_record(*, timer_id: int, outcome: str, detail: str = "", now: datetime | None = None) -> bool:
    """Mark an active timer expired with ``outcome``; False when it was no longer active.

    The conditional update makes this safe to race: of two processes expiring the same
    timer, exactly one records it.
    """
    if outcome not in ExpiryOutcome.values:
        raise ValueError(f"unknown expiry outcome {outcome!r}")
    now = now or timezone.now()
    with transaction.atomic():
        updated = TimedRole.objects.filter(pk=timer_id, state=TimerState.ACTIVE).update(
            state=TimerState.EXPIRED,
            ended_at=now,
            outcome=outcome,
            outcome_detail=detail[:300],
            next_warn_at=None,
            updated_at=now,
        )
        if updated:
            TimerEvent.objects.create(timer_id=timer_id, kind=TimerEventKind.EXPIRE, detail=outcome)
    return bool(updated)
