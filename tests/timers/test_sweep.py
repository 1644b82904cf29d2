"""The sweep that resumes paused timers whose pause deadline has passed."""

from __future__ import annotations

from datetime import datetime, timedelta

import pytest
from django.utils import timezone
from django_q.models import OrmQ

from bots.sweeper.relay import BATON
from bots.tasks import sweep_timers
from tests.conftest import GUILD, OTHER_GUILD
from tests.timers.shortcuts import ACTOR, NOW, ROLE
from timers.models import PauseKind, TimedRole, TimerEvent, TimerEventKind, TimerState
from timers.selectors import sweep_baton_holder
from timers.services import (
    timer_auto_resume,
    timer_pause,
    timer_pause_all,
    timer_set,
    timer_warnings_set,
)

pytestmark = pytest.mark.django_db


def paused_timer(member: int, *, set_at: datetime, length: timedelta, paused_at: datetime, pause_for, guild=GUILD):
    timer_set(guild_id=guild, member_id=member, role_id=ROLE, duration=length, actor_id=ACTOR, now=set_at)
    change = timer_pause(guild_id=guild, member_id=member, role_id=ROLE, actor_id=ACTOR, duration=pause_for, now=paused_at)
    return change.timer


def stored(timer) -> TimedRole:
    return TimedRole.objects.get(pk=timer.pk)


def auto_resume_events() -> int:
    return TimerEvent.objects.filter(kind=TimerEventKind.AUTO_RESUME).count()


def test_it_resumes_timers_whose_pause_deadline_passed():
    # 2h timer, paused 30 min in for 1 hour: 90 minutes left from the deadline.
    due = paused_timer(
        1, set_at=NOW, length=timedelta(hours=2), paused_at=NOW + timedelta(minutes=30), pause_for=timedelta(hours=1)
    )
    exactly = paused_timer(2, set_at=NOW, length=timedelta(hours=1), paused_at=NOW, pause_for=timedelta(hours=3))
    not_yet = paused_timer(3, set_at=NOW, length=timedelta(hours=1), paused_at=NOW, pause_for=timedelta(hours=4))
    no_deadline = paused_timer(4, set_at=NOW, length=timedelta(hours=1), paused_at=NOW, pause_for=None)
    sweep_at = NOW + timedelta(hours=3)  # the sweep runs late: long after the first deadline

    assert timer_auto_resume(now=sweep_at) == 2

    row = stored(due)
    assert row.state == TimerState.ACTIVE
    assert row.expires_at == NOW + timedelta(minutes=90) + timedelta(minutes=90)
    assert row.paused_remaining is None
    assert row.pause_until is None
    assert row.pause_kind == ""
    assert row.warnings_sent == []
    assert row.next_warn_at == row.expires_at - timedelta(minutes=60)
    assert stored(exactly).state == TimerState.ACTIVE
    assert stored(exactly).expires_at == NOW + timedelta(hours=4)
    for untouched in (not_yet, no_deadline):
        assert stored(untouched).state == TimerState.PAUSED
        assert stored(untouched).paused_remaining == timedelta(hours=1)
    assert set(TimerEvent.objects.filter(kind=TimerEventKind.AUTO_RESUME).values_list("timer_id", flat=True)) == {
        due.pk,
        exactly.pk,
    }


def test_it_does_nothing_the_second_time():
    timer = paused_timer(1, set_at=NOW, length=timedelta(hours=2), paused_at=NOW, pause_for=timedelta(hours=1))
    sweep_at = NOW + timedelta(hours=1, minutes=5)

    assert timer_auto_resume(now=sweep_at) == 1
    first = stored(timer)
    assert timer_auto_resume(now=sweep_at + timedelta(minutes=1)) == 0

    assert stored(timer).expires_at == first.expires_at
    assert auto_resume_events() == 1


def test_it_resumes_timers_frozen_by_a_pause_all():
    for member in (1, 2):
        timer_set(guild_id=GUILD, member_id=member, role_id=ROLE, duration=timedelta(hours=2), actor_id=ACTOR, now=NOW)
    timer_pause_all(guild_id=GUILD, role_id=ROLE, actor_id=ACTOR, duration=timedelta(hours=1), now=NOW)

    assert timer_auto_resume(now=NOW + timedelta(hours=1)) == 2

    rows = TimedRole.objects.filter(guild_id=GUILD)
    assert {(r.state, r.pause_kind, r.expires_at) for r in rows} == {(TimerState.ACTIVE, "", NOW + timedelta(hours=3))}


def test_it_arms_warnings_at_each_guilds_thresholds():
    timer_warnings_set(guild_id=OTHER_GUILD, minutes=[30, 5], now=NOW)
    here = paused_timer(1, set_at=NOW, length=timedelta(hours=2), paused_at=NOW, pause_for=timedelta(hours=1))
    there = paused_timer(1, set_at=NOW, length=timedelta(hours=2), paused_at=NOW, pause_for=timedelta(hours=1), guild=OTHER_GUILD)

    assert timer_auto_resume(now=NOW + timedelta(hours=1)) == 2

    assert stored(here).next_warn_at == NOW + timedelta(hours=2)
    assert stored(there).next_warn_at == NOW + timedelta(hours=2, minutes=30)


def test_it_resumes_in_batches():
    timers = [
        paused_timer(m, set_at=NOW, length=timedelta(hours=2), paused_at=NOW, pause_for=timedelta(minutes=10 + m))
        for m in range(1, 6)
    ]
    sweep_at = NOW + timedelta(hours=1)

    assert timer_auto_resume(now=sweep_at, batch=2) == 2
    # Oldest deadlines first.
    assert [stored(t).state for t in timers] == [TimerState.ACTIVE] * 2 + [TimerState.PAUSED] * 3
    assert timer_auto_resume(now=sweep_at, batch=2) == 2
    assert timer_auto_resume(now=sweep_at, batch=2) == 1
    assert timer_auto_resume(now=sweep_at, batch=2) == 0


# The task closes stale connections first, as a worker must; that needs real transactions.
@pytest.mark.django_db(transaction=True)
def test_it_sweeps_due_timers_as_a_task():
    real_now = timezone.now()
    set_at = real_now - timedelta(hours=2)
    due = paused_timer(
        1, set_at=set_at, length=timedelta(hours=3), paused_at=set_at + timedelta(minutes=30), pause_for=timedelta(hours=1)
    )
    later = paused_timer(
        2, set_at=set_at, length=timedelta(hours=3), paused_at=set_at + timedelta(minutes=30), pause_for=timedelta(hours=5)
    )

    assert sweep_timers(seconds=0)["resumed"] == 1

    row = stored(due)
    assert row.state == TimerState.ACTIVE
    # Deadline (set_at + 90 min) plus the frozen 150 minutes.
    assert row.expires_at == set_at + timedelta(hours=4)
    assert stored(later).state == TimerState.PAUSED
    assert stored(later).pause_kind == PauseKind.MEMBER
    assert auto_resume_events() == 1

    # The run queued its successor and handed it the baton: the watchdog's next run ends at
    # once, and the successor, presenting its token, sweeps (and finds nothing left to do).
    (queued,) = [q.task for q in OrmQ.objects.all()]
    assert queued["func"] == "bots.tasks.sweep_timers"
    seconds, token = queued["args"]
    assert token == sweep_baton_holder(name=BATON)
    assert sweep_timers(seconds=0) == {"skipped": "another sweep run holds the baton"}
    assert sweep_timers(seconds, token)["resumed"] == 0
    assert auto_resume_events() == 1
