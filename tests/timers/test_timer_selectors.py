"""The selectors the sweeps and the show command read: exactly the due or live rows."""

from __future__ import annotations

import pytest

from tests.conftest import GUILD, OTHER_GUILD
from tests.timers.shortcuts import (
    MEMBER,
    NOW,
    OTHER_MEMBER,
    OTHER_ROLE,
    ROLE,
    THIRD_MEMBER,
    clear,
    hours,
    minutes,
    pause,
    set_timer,
    stored,
)
from timers.models import TimedRole
from timers.selectors import timers_due_expiry, timers_due_resume, timers_due_warning, timers_live

pytestmark = pytest.mark.django_db


def test_it_selects_timers_due_to_expire():
    due_early = set_timer(minutes(10), member=MEMBER).timer
    due_exactly = set_timer(minutes(30), member=OTHER_MEMBER).timer
    set_timer(minutes(31), member=THIRD_MEMBER)  # still running
    set_timer(minutes(10), role=OTHER_ROLE)
    pause(role=OTHER_ROLE, now=NOW + minutes(1))  # paused: never due
    set_timer(minutes(10), guild=OTHER_GUILD)
    clear(guild=OTHER_GUILD)  # cleared: history, not due

    due = list(timers_due_expiry(now=NOW + minutes(30)))

    assert due == [due_early, due_exactly]


def test_it_selects_timers_due_a_warning():
    due = set_timer(hours(2), member=MEMBER).timer  # warns at NOW + 1h
    set_timer(hours(3), member=OTHER_MEMBER)  # warns at NOW + 2h
    set_timer(hours(2), role=OTHER_ROLE)
    pause(role=OTHER_ROLE, now=NOW)
    cleared = set_timer(hours(2), guild=OTHER_GUILD).timer
    clear(guild=OTHER_GUILD)
    # A cleared row that still carried a warning time must not be picked either.
    TimedRole.objects.filter(pk=cleared.pk).update(next_warn_at=NOW)

    assert list(timers_due_warning(now=NOW + hours(1))) == [due]
    assert list(timers_due_warning(now=NOW + minutes(59))) == []


def test_it_selects_timers_due_to_resume():
    set_timer(hours(2), member=MEMBER)
    due = stored(pause(member=MEMBER, now=NOW, duration=hours(1)))
    set_timer(hours(2), member=OTHER_MEMBER)
    pause(member=OTHER_MEMBER, now=NOW, duration=hours(2))  # deadline later
    set_timer(hours(2), member=THIRD_MEMBER)
    pause(member=THIRD_MEMBER, now=NOW)  # no deadline
    set_timer(hours(2), role=OTHER_ROLE)  # running
    set_timer(hours(2), guild=OTHER_GUILD)
    pause(guild=OTHER_GUILD, now=NOW, duration=minutes(30))
    clear(guild=OTHER_GUILD)  # cleared

    assert list(timers_due_resume(now=NOW + hours(1))) == [due]
    assert list(timers_due_resume(now=NOW + minutes(59))) == []


def test_it_lists_live_timers():
    soon = set_timer(hours(1), member=MEMBER).timer
    later = set_timer(hours(3), member=OTHER_MEMBER).timer
    paused = set_timer(hours(2), member=THIRD_MEMBER).timer
    pause(member=THIRD_MEMBER, now=NOW)
    other_role = set_timer(hours(2), role=OTHER_ROLE).timer
    set_timer(hours(2), role=OTHER_ROLE, member=OTHER_MEMBER)
    clear(role=OTHER_ROLE, member=OTHER_MEMBER)
    set_timer(hours(2), guild=OTHER_GUILD)

    assert list(timers_live(guild_id=GUILD)) == [soon, other_role, later, paused]
    assert list(timers_live(guild_id=GUILD, role_id=ROLE)) == [soon, later, paused]
    assert list(timers_live(guild_id=GUILD, member_id=MEMBER)) == [soon, other_role]
    assert list(timers_live(guild_id=GUILD, member_id=OTHER_MEMBER, role_id=OTHER_ROLE)) == []
