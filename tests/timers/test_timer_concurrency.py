"""Commands racing on one timer, from real threads with their own connections."""

from __future__ import annotations

import threading
from concurrent.futures import ThreadPoolExecutor
from datetime import timedelta

import pytest
from django.db import connections
from django.utils import timezone

from tests.conftest import GUILD
from timers.models import TimedRole, TimerEvent, TimerEventKind, TimerState
from timers.selectors import timers_live
from timers.services import timer_add, timer_set

MEMBER = 200000000000000001
ROLE = 300000000000000001
WORKERS = 16

pytestmark = pytest.mark.django_db(transaction=True)


def race(work) -> list:
    """Run ``work(i)`` in WORKERS threads released together; return the results in order."""
    barrier = threading.Barrier(WORKERS)

    def worker(i):
        try:
            barrier.wait(timeout=30)
            return work(i)
        finally:
            connections.close_all()

    with ThreadPoolExecutor(max_workers=WORKERS) as pool:
        futures = [pool.submit(worker, i) for i in range(WORKERS)]
        return [f.result(timeout=120) for f in futures]


def test_it_adds_every_hour_when_adds_race():
    start = timezone.now()
    timer_set(guild_id=GUILD, member_id=MEMBER, role_id=ROLE, duration=timedelta(hours=1), actor_id=1, now=start)

    race(lambda i: timer_add(guild_id=GUILD, member_id=MEMBER, role_id=ROLE, duration=timedelta(hours=1), actor_id=1000 + i))

    [timer] = timers_live(guild_id=GUILD, member_id=MEMBER, role_id=ROLE)
    assert timer.state == TimerState.ACTIVE
    assert abs(timer.expires_at - (start + timedelta(hours=1 + WORKERS))) <= timedelta(seconds=1)
    assert TimedRole.objects.count() == 1
    assert TimerEvent.objects.filter(timer=timer, kind=TimerEventKind.ADD).count() == WORKERS


def test_it_keeps_one_live_timer_when_adds_race_to_start_it():
    start = timezone.now()

    changes = race(
        lambda i: timer_add(
            guild_id=GUILD, member_id=MEMBER, role_id=ROLE, duration=timedelta(hours=1), actor_id=1000 + i, now=start
        )
    )

    assert sum(change.created for change in changes) == 1
    [timer] = timers_live(guild_id=GUILD, member_id=MEMBER, role_id=ROLE)
    assert timer.expires_at == start + timedelta(hours=WORKERS)


def test_it_keeps_one_live_timer_when_sets_race():
    start = timezone.now()

    changes = race(
        lambda i: timer_set(
            guild_id=GUILD,
            member_id=MEMBER,
            role_id=ROLE,
            duration=timedelta(minutes=60 + i),
            actor_id=1000 + i,
            now=start,
        )
    )

    assert sum(change.created for change in changes) == 1
    assert len({change.timer.pk for change in changes}) == 1
    [timer] = timers_live(guild_id=GUILD, member_id=MEMBER, role_id=ROLE)
    assert TimedRole.objects.count() == 1
    assert TimerEvent.objects.filter(timer=timer, kind=TimerEventKind.SET).count() == WORKERS
    # The last writer wins, whole: its duration and its actor together.
    last = TimerEvent.objects.filter(timer=timer).latest("pk")
    assert timer.expires_at == start + timedelta(seconds=last.seconds)
    assert timer.issued_by_id == last.actor_id
