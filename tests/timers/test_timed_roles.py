"""set, add, remove, clear, pause and resume, for one member and for a whole role."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from datetime import timezone as dt_timezone

import pytest

from tests.conftest import GUILD, OTHER_GUILD
from tests.timers.shortcuts import (
    ACTOR,
    CHANNEL,
    MEMBER,
    NOW,
    OTHER_MEMBER,
    OTHER_ROLE,
    ROLE,
    THIRD_MEMBER,
    add_time,
    clear,
    event_kinds,
    hours,
    live_rows,
    minutes,
    pause,
    remove_time,
    resume,
    set_timer,
    stored,
)
from timers.errors import InvalidDuration, TimerError, TimerNotFound
from timers.models import PauseKind, TimedRole, TimerEvent, TimerEventKind, TimerState
from timers.selectors import timers_due_expiry, timers_due_resume
from timers.services import timer_pause_all, timer_resume_all

pytestmark = pytest.mark.django_db


# --- set --------------------------------------------------------------------------


def test_it_sets_a_timer():
    change = set_timer(hours(2), channel_id=CHANNEL)

    timer = stored(change)
    assert change.created
    assert timer.state == TimerState.ACTIVE
    assert timer.expires_at == NOW + hours(2)
    assert timer.paused_remaining is None
    assert timer.issued_by_id == ACTOR
    assert timer.warn_channel_id == CHANNEL
    event = TimerEvent.objects.get(timer=timer)
    assert event.kind == TimerEventKind.SET
    assert event.seconds == 7200
    assert event.actor_id == ACTOR


def test_it_reports_a_timer_set_in_the_past_as_due_now():
    assert not set_timer(hours(2), now=datetime.now(UTC)).due_now
    assert set_timer(minutes(1), member=OTHER_MEMBER, now=NOW).due_now


def test_it_replaces_a_live_timer_keeping_one_row():
    first = set_timer(hours(2))
    second = set_timer(hours(5), now=NOW + minutes(30))

    assert not second.created
    rows = live_rows()
    assert [row.pk for row in rows] == [first.timer.pk]
    assert rows[0].expires_at == NOW + minutes(30) + hours(5)
    assert TimedRole.objects.count() == 1
    assert event_kinds(first.timer) == [TimerEventKind.SET, TimerEventKind.SET]


def test_it_replaces_a_paused_timer_with_a_running_one():
    set_timer(hours(2))
    pause(now=NOW + minutes(10), duration=hours(1))
    set_timer(hours(1), now=NOW + minutes(20))

    [timer] = live_rows()
    assert timer.state == TimerState.ACTIVE
    assert timer.expires_at == NOW + minutes(20) + hours(1)
    assert timer.paused_remaining is None
    assert timer.pause_until is None
    assert timer.pause_kind == ""


def test_it_keeps_the_channel_when_replaced_without_one():
    set_timer(hours(2), channel_id=CHANNEL)
    set_timer(hours(3))

    assert live_rows()[0].warn_channel_id == CHANNEL


def test_it_keeps_timers_of_other_members_roles_and_guilds_apart():
    set_timer(hours(1))
    set_timer(hours(2), member=OTHER_MEMBER)
    set_timer(hours(3), role=OTHER_ROLE)
    set_timer(hours(4), guild=OTHER_GUILD)

    assert TimedRole.objects.filter(state=TimerState.ACTIVE).count() == 4
    assert live_rows()[0].expires_at == NOW + hours(1)


@pytest.mark.parametrize("duration", [timedelta(0), timedelta(seconds=59), timedelta(days=366), -hours(1), 60])
def test_it_refuses_durations_out_of_bounds(duration):
    with pytest.raises(InvalidDuration):
        set_timer(duration)
    with pytest.raises(InvalidDuration):
        add_time(duration)

    assert not TimedRole.objects.exists()
    assert not TimerEvent.objects.exists()


# --- add --------------------------------------------------------------------------


def test_it_adds_time_from_the_expiry_of_a_running_timer():
    set_timer(hours(1))

    change = add_time(minutes(30), now=NOW + minutes(10))

    timer = stored(change)
    assert not change.created
    assert timer.state == TimerState.ACTIVE
    assert timer.expires_at == NOW + minutes(90)
    event = TimerEvent.objects.filter(timer=timer).latest("pk")
    assert (event.kind, event.seconds) == (TimerEventKind.ADD, 1800)


def test_it_adds_time_from_now_to_a_timer_that_ran_out_but_is_still_active():
    set_timer(hours(1))

    change = add_time(minutes(30), now=NOW + hours(3))

    timer = stored(change)
    assert timer.state == TimerState.ACTIVE
    assert timer.expires_at == NOW + hours(3) + minutes(30)


def test_it_adds_time_to_the_remainder_of_a_paused_timer():
    set_timer(hours(2))
    pause(now=NOW + minutes(30))

    change = add_time(hours(1), now=NOW + minutes(40))

    timer = stored(change)
    assert timer.state == TimerState.PAUSED
    assert timer.paused_remaining == minutes(90) + hours(1)
    assert timer.expires_at is None
    assert timer.next_warn_at is None
    resumed = stored(resume(now=NOW + minutes(50)))
    assert resumed.expires_at == NOW + minutes(50) + minutes(150)


def test_it_keeps_the_pause_deadline_when_time_is_added():
    set_timer(hours(2))
    pause(now=NOW, duration=hours(3))

    timer = stored(add_time(hours(1), now=NOW + minutes(5)))

    assert timer.pause_until == NOW + hours(3)
    assert timer.pause_kind == PauseKind.MEMBER


def test_it_starts_a_timer_when_adding_to_none():
    change = add_time(hours(1), channel_id=CHANNEL)

    timer = stored(change)
    assert change.created
    assert timer.state == TimerState.ACTIVE
    assert timer.expires_at == NOW + hours(1)
    assert timer.warn_channel_id == CHANNEL
    assert len(live_rows()) == 1


# --- remove -----------------------------------------------------------------------


def test_it_removes_time():
    set_timer(hours(2))

    change = remove_time(minutes(30), now=NOW + minutes(10))

    timer = stored(change)
    assert timer.state == TimerState.ACTIVE
    assert timer.expires_at == NOW + minutes(90)
    event = TimerEvent.objects.filter(timer=timer).latest("pk")
    assert (event.kind, event.seconds) == (TimerEventKind.REMOVE, 1800)


@pytest.mark.parametrize("taken", [hours(1) - minutes(10), hours(1), hours(5)])
def test_it_makes_a_timer_due_now_when_removing_all_its_time(taken):
    set_timer(hours(1))
    later = NOW + minutes(10)

    change = remove_time(taken, now=later)

    timer = stored(change)
    assert timer.state == TimerState.ACTIVE
    assert timer.expires_at == later
    assert change.due_now
    assert list(timers_due_expiry(now=later)) == [timer]


def test_it_removes_time_from_the_remainder_of_a_paused_timer():
    set_timer(hours(2))
    pause(now=NOW, duration=hours(6))

    timer = stored(remove_time(minutes(30), now=NOW + minutes(5)))

    assert timer.state == TimerState.PAUSED
    assert timer.paused_remaining == minutes(90)
    assert timer.expires_at is None
    assert timer.pause_until == NOW + hours(6)


@pytest.mark.parametrize("taken", [hours(2), hours(3)])
def test_it_makes_a_paused_timer_due_now_when_removing_all_its_remainder(taken):
    set_timer(hours(2))
    pause(now=NOW, duration=hours(6))
    later = NOW + minutes(5)

    change = remove_time(taken, now=later)

    timer = stored(change)
    assert timer.state == TimerState.ACTIVE
    assert timer.expires_at == later
    assert timer.paused_remaining is None
    assert timer.pause_until is None
    assert timer.pause_kind == ""
    assert change.due_now
    assert list(timers_due_expiry(now=later)) == [timer]
    assert not timers_due_resume(now=NOW + hours(7)).exists()


def test_it_cannot_remove_time_from_no_timer():
    with pytest.raises(TimerNotFound):
        remove_time(hours(1))


# --- clear ------------------------------------------------------------------------


def test_it_clears_a_timer_and_keeps_it_as_history():
    first = set_timer(hours(2)).timer

    clear()

    timer = stored(first)
    assert timer.state == TimerState.CLEARED
    assert timer.ended_at is not None
    assert timer.next_warn_at is None
    assert event_kinds(timer) == [TimerEventKind.SET, TimerEventKind.CLEAR]
    assert live_rows() == []

    again = set_timer(hours(1), now=NOW + hours(1))

    assert again.created
    assert again.timer.pk != first.pk
    assert [row.pk for row in live_rows()] == [again.timer.pk]
    assert stored(first).state == TimerState.CLEARED
    assert TimedRole.objects.count() == 2


def test_it_clears_a_paused_timer():
    set_timer(hours(2))
    pause(now=NOW, duration=hours(1))

    timer = stored(clear())

    assert timer.state == TimerState.CLEARED
    assert timer.pause_until is None
    assert not timers_due_resume(now=NOW + hours(2)).exists()


def test_it_cannot_clear_no_timer_or_clear_twice():
    with pytest.raises(TimerNotFound):
        clear()
    set_timer(hours(1))
    clear()
    with pytest.raises(TimerNotFound):
        clear()


# --- pause and resume -------------------------------------------------------------


def test_it_pauses_a_timer():
    set_timer(hours(2))

    change = pause(now=NOW + minutes(30))

    timer = stored(change)
    assert timer.state == TimerState.PAUSED
    assert timer.paused_remaining == minutes(90)
    assert timer.expires_at is None
    assert timer.next_warn_at is None
    assert timer.pause_until is None
    assert timer.pause_kind == PauseKind.MEMBER
    assert not change.due_now
    assert event_kinds(timer)[-1] == TimerEventKind.PAUSE


def test_it_pauses_until_a_deadline():
    set_timer(hours(2))

    timer = stored(pause(now=NOW + minutes(30), duration=hours(1)))

    assert timer.pause_until == NOW + minutes(90)
    assert timer.paused_remaining == minutes(90)


def test_it_refuses_to_pause_a_paused_timer():
    set_timer(hours(2))
    pause(now=NOW + minutes(30))

    with pytest.raises(TimerError) as info:
        pause(now=NOW + minutes(40), duration=hours(1))

    assert not isinstance(info.value, TimerNotFound)
    timer = live_rows()[0]
    assert timer.paused_remaining == minutes(90)
    assert timer.pause_until is None


def test_it_refuses_to_pause_a_timer_that_ran_out():
    set_timer(hours(1))

    with pytest.raises(TimerError):
        pause(now=NOW + hours(1))

    assert live_rows()[0].state == TimerState.ACTIVE


def test_it_cannot_pause_no_timer():
    with pytest.raises(TimerNotFound):
        pause()


def test_it_resumes_a_timer():
    set_timer(hours(2))
    pause(now=NOW + minutes(30), duration=hours(5))

    timer = stored(resume(now=NOW + hours(3)))

    assert timer.state == TimerState.ACTIVE
    assert timer.expires_at == NOW + hours(3) + minutes(90)
    assert timer.paused_remaining is None
    assert timer.pause_until is None
    assert timer.pause_kind == ""
    assert timer.next_warn_at == timer.expires_at - minutes(60)
    assert event_kinds(timer)[-1] == TimerEventKind.RESUME


def test_it_refuses_to_resume_a_running_timer_or_none():
    with pytest.raises(TimerNotFound):
        resume()
    set_timer(hours(2))
    with pytest.raises(TimerError):
        resume(now=NOW + minutes(5))
    assert live_rows()[0].expires_at == NOW + hours(2)


# --- pause-all and resume-all -----------------------------------------------------


def test_it_pauses_and_resumes_every_running_timer_of_a_role():
    a = set_timer(hours(2), member=MEMBER).timer
    b = set_timer(hours(3), member=OTHER_MEMBER).timer
    own = set_timer(hours(4), member=THIRD_MEMBER).timer
    pause(member=THIRD_MEMBER, now=NOW + minutes(5))
    other_role = set_timer(hours(2), role=OTHER_ROLE).timer
    other_guild = set_timer(hours(2), guild=OTHER_GUILD).timer

    paused = timer_pause_all(guild_id=GUILD, role_id=ROLE, actor_id=ACTOR, now=NOW + minutes(30))

    assert paused == 2
    for timer, left in ((a, minutes(90)), (b, minutes(150))):
        row = stored(timer)
        assert row.state == TimerState.PAUSED
        assert row.pause_kind == PauseKind.GLOBAL
        assert row.paused_remaining == left
        assert row.expires_at is None
        assert row.next_warn_at is None
        assert event_kinds(row)[-1] == TimerEventKind.PAUSE
    assert stored(own).pause_kind == PauseKind.MEMBER
    assert stored(own).paused_remaining == hours(4) - minutes(5)
    assert stored(other_role).state == TimerState.ACTIVE
    assert stored(other_guild).state == TimerState.ACTIVE

    later = NOW + hours(5)
    resumed = timer_resume_all(guild_id=GUILD, role_id=ROLE, actor_id=ACTOR, now=later)

    assert resumed == 2
    assert stored(a).state == TimerState.ACTIVE
    assert stored(a).expires_at == later + minutes(90)
    assert stored(a).next_warn_at == later + minutes(30)
    assert stored(a).pause_kind == ""
    assert stored(b).expires_at == later + minutes(150)
    assert event_kinds(a)[-1] == TimerEventKind.RESUME
    assert stored(own).state == TimerState.PAUSED
    assert stored(own).pause_kind == PauseKind.MEMBER
    assert stored(other_role).expires_at == NOW + hours(2)
    assert timer_resume_all(guild_id=GUILD, role_id=ROLE, actor_id=ACTOR, now=later) == 0


def test_it_pauses_all_with_a_deadline_and_leaves_timers_that_ran_out():
    set_timer(hours(2), member=MEMBER)
    set_timer(minutes(10), member=OTHER_MEMBER)

    paused = timer_pause_all(guild_id=GUILD, role_id=ROLE, actor_id=ACTOR, duration=hours(1), now=NOW + minutes(10))

    assert paused == 1
    assert live_rows(member=MEMBER)[0].pause_until == NOW + minutes(70)
    ran_out = live_rows(member=OTHER_MEMBER)[0]
    assert ran_out.state == TimerState.ACTIVE
    assert list(timers_due_expiry(now=NOW + minutes(10))) == [ran_out]


def test_it_counts_nothing_to_pause_or_resume():
    assert timer_pause_all(guild_id=GUILD, role_id=ROLE, actor_id=ACTOR, now=NOW) == 0
    assert timer_resume_all(guild_id=GUILD, role_id=ROLE, actor_id=ACTOR, now=NOW) == 0
