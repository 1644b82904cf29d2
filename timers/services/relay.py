"""The engine's baton: which sweep run may drive the timer engine now (see ``SweepBaton``).

Each change is one conditional UPDATE (the healthchecks way), so that of two runs
racing for the baton exactly one gets it, on SQLite and PostgreSQL alike.
"""

from __future__ import annotations

from datetime import datetime, timedelta

from django.db import transaction
from django.db.models import Q
from django.utils import timezone

from config.database import retry_transient
from timers.models import SweepBaton


@retry_transient()
def sweep_baton_take(*, name: str, holder: str, hold: timedelta, token: str = "", now: datetime | None = None) -> bool:
    """Take the baton when it is free, its holder's hold ran out, or it was handed to ``token``."""
    now = now or timezone.now()
    with transaction.atomic():
        SweepBaton.objects.get_or_create(name=name)
    free = Q(holder="") | Q(held_until__isnull=True) | Q(held_until__lte=now)
    if token:
        free |= Q(holder=token)
    return SweepBaton.objects.filter(free, name=name).update(holder=holder, held_until=now + hold, updated_at=now) == 1


@retry_transient()
def sweep_baton_renew(*, name: str, holder: str, hold: timedelta, now: datetime | None = None) -> bool:
    """Keep holding the baton; False when it is no longer ours (our hold ran out and another took it)."""
    now = now or timezone.now()
    return SweepBaton.objects.filter(name=name, holder=holder).update(held_until=now + hold, updated_at=now) == 1


@retry_transient()
def sweep_baton_pass(*, name: str, holder: str, token: str, hold: timedelta, now: datetime | None = None) -> bool:
    """Hand the baton to the run that will present ``token``; it has ``hold`` to start."""
    now = now or timezone.now()
    return SweepBaton.objects.filter(name=name, holder=holder).update(holder=token, held_until=now + hold, updated_at=now) == 1


@retry_transient()
def sweep_baton_drop(*, name: str, holder: str) -> bool:
    """Let go of the baton (nobody to hand it to): the next run that asks takes it."""
    return SweepBaton.objects.filter(name=name, holder=holder).update(holder="", held_until=None) == 1
