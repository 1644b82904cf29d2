"""Commands racing on one timer, from real threads with their own connections."""

from __future__ import annotations

import threading
import time
from concurrent.futures import ThreadPoolExecutor
from datetime import timedelta

import pytest
from django.db import connections, transaction
from django.utils import timezone

from tests.conftest import GUILD
from timers.models import TimedRole, TimerEvent, TimerEventKind, TimerState
from timers.selectors import timers_live
from timers.services import timer_add, timer_pause_all, timer_resume_all, timer_set

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


# --- pause-all / resume-all against a row locked elsewhere -----------------------------------------
def _hold_row_lock(timer_id: int, locked: threading.Event, release_after: float) -> threading.Thread:
    """Lock one timer's row from another connection (as a warning being recorded does) for a while."""

    def hold():
        try:
            with transaction.atomic():
                TimedRole.objects.select_for_update().get(pk=timer_id)
                locked.set()
                time.sleep(release_after)
        finally:
            connections.close_all()

    thread = threading.Thread(target=hold)
    thread.start()
    return thread


@pytest.mark.postgres
def test_it_pauses_every_timer_of_the_role_waiting_for_a_locked_one():
    now = timezone.now()
    timers = [
        timer_set(guild_id=GUILD, member_id=MEMBER + i, role_id=ROLE, duration=timedelta(hours=1), actor_id=1, now=now).timer
        for i in range(3)
    ]
    locked = threading.Event()
    holder = _hold_row_lock(timers[1].pk, locked, release_after=1.0)
    assert locked.wait(10)

    started = time.monotonic()
    paused = timer_pause_all(guild_id=GUILD, role_id=ROLE, actor_id=1, now=now + timedelta(minutes=1))
    holder.join()

    assert paused == 3  # the locked one too: an admin told "Paused 3" means all three
    assert time.monotonic() - started >= 0.9  # it waited for the lock instead of skipping the row
    assert set(TimedRole.objects.values_list("state", flat=True)) == {TimerState.PAUSED}

    locked.clear()
    holder = _hold_row_lock(timers[2].pk, locked, release_after=1.0)
    assert locked.wait(10)
    resumed = timer_resume_all(guild_id=GUILD, role_id=ROLE, actor_id=1, now=now + timedelta(minutes=2))
    holder.join()

    assert resumed == 3
    assert set(TimedRole.objects.values_list("state", flat=True)) == {TimerState.ACTIVE}
