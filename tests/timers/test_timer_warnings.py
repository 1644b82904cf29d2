"""Warning thresholds: which are dealt with, when the next falls due, and changing them."""

from __future__ import annotations

import pytest

from tests.conftest import GUILD, OTHER_GUILD
from tests.timers.shortcuts import (
    NOW,
    OTHER_MEMBER,
    THIRD_MEMBER,
    add_time,
    hours,
    minutes,
    pause,
    remove_time,
    resume,
    set_timer,
    stored,
)
from timers.errors import TimerError
from timers.selectors import timers_due_warning
from timers.services import timer_settings_get, timer_warnings_set

pytestmark = pytest.mark.django_db


def test_it_arms_every_warning_of_a_long_timer():
    timer = stored(set_timer(hours(2)))

    assert timer.warnings_sent == []
    assert timer.next_warn_at == timer.expires_at - minutes(60)


def test_it_skips_warnings_a_short_timer_is_already_inside():
    timer = stored(set_timer(minutes(30)))

    assert timer.warnings_sent == [60]
    assert timer.next_warn_at == timer.expires_at - minutes(10)


def test_it_rearms_warnings_when_time_is_added_past_them():
    set_timer(minutes(30))
    timer = stored(remove_time(minutes(25)))
    assert timer.warnings_sent == [60, 10]
    assert timer.next_warn_at == NOW + minutes(4)

    timer = stored(add_time(hours(2)))

    assert timer.expires_at == NOW + minutes(5) + hours(2)
    assert timer.warnings_sent == []
    assert timer.next_warn_at == timer.expires_at - minutes(60)


def test_it_leaves_no_warning_when_every_threshold_is_passed():
    timer = stored(set_timer(minutes(1)))

    assert timer.warnings_sent == [60, 10, 1]
    assert timer.next_warn_at is None


def test_it_sets_warning_thresholds_and_reschedules_running_timers():
    running = set_timer(hours(2)).timer
    paused = set_timer(hours(2), member=OTHER_MEMBER).timer
    pause(member=OTHER_MEMBER, now=NOW)
    elsewhere = set_timer(hours(2), guild=OTHER_GUILD).timer

    assert timer_warnings_set(guild_id=GUILD, minutes=[5, 30], now=NOW) == [30, 5]

    assert timer_settings_get(GUILD).warning_minutes == [30, 5]
    assert stored(running).next_warn_at == NOW + hours(2) - minutes(30)
    assert stored(running).warnings_sent == []
    assert stored(paused).next_warn_at is None
    assert stored(elsewhere).next_warn_at == NOW + hours(1)
    assert timer_settings_get(OTHER_GUILD).warning_minutes == [60, 10, 1]
    fresh = stored(set_timer(minutes(20), member=THIRD_MEMBER))
    assert fresh.warnings_sent == [30]
    assert fresh.next_warn_at == fresh.expires_at - minutes(5)
    resumed = stored(resume(member=OTHER_MEMBER, now=NOW + minutes(10)))
    assert resumed.next_warn_at == resumed.expires_at - minutes(30)


def test_it_keeps_warnings_already_sent_when_thresholds_change():
    set_timer(minutes(30))
    timer = stored(remove_time(minutes(22)))  # 8 minutes left: 60 and 10 are dealt with
    assert timer.warnings_sent == [60, 10]

    timer_warnings_set(guild_id=GUILD, minutes=[10, 5], now=NOW)

    timer = stored(timer)
    assert timer.warnings_sent == [10]
    assert timer.next_warn_at == timer.expires_at - minutes(5)


def test_it_does_not_fire_a_new_threshold_the_timer_is_already_inside():
    timer = stored(set_timer(minutes(20)))
    assert timer.warnings_sent == [60]

    timer_warnings_set(guild_id=GUILD, minutes=[30, 5], now=NOW)

    timer = stored(timer)
    assert timer.next_warn_at == timer.expires_at - minutes(5)
    assert not timers_due_warning(now=NOW).exists()


@pytest.mark.parametrize("bad", [[0], [-1], [60, 0], [1, 2, 3, 4, 5, 6], ["5"], [1.5], [None], [60, "10"], [7 * 1440 + 1]])
def test_it_refuses_bad_warning_thresholds_and_changes_nothing(bad):
    timer = stored(set_timer(hours(2)))

    with pytest.raises(TimerError):
        timer_warnings_set(guild_id=GUILD, minutes=bad, now=NOW)

    assert timer_settings_get(GUILD).warning_minutes == [60, 10, 1]
    assert stored(timer).next_warn_at == timer.next_warn_at
    assert stored(timer).warnings_sent == []
