"""Shortcuts to the timer services for tests: fixed ids, a fixed clock, short calls.

Time is fixed through the services' ``now=`` parameters; NOW lies in the past so that
``TimerChange.due_now`` (which compares with the real clock) reads naturally.
"""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from datetime import timezone as dt_timezone

from tests.conftest import GUILD
from timers.models import TimedRole, TimerEvent
from timers.selectors import timers_live
from timers.services import timer_add, timer_clear, timer_pause, timer_remove, timer_resume, timer_set

NOW = datetime(2025, 1, 6, 12, 0, tzinfo=UTC)
MEMBER = 200000000000000001
OTHER_MEMBER = 200000000000000002
THIRD_MEMBER = 200000000000000003
ROLE = 300000000000000001
OTHER_ROLE = 300000000000000002
ACTOR = 400000000000000001
CHANNEL = 500000000000000001


def minutes(n: float) -> timedelta:
    return timedelta(minutes=n)


def hours(n: float) -> timedelta:
    return timedelta(hours=n)


def set_timer(duration, *, member=MEMBER, role=ROLE, guild=GUILD, now=NOW, **kwargs):
    return timer_set(guild_id=guild, member_id=member, role_id=role, duration=duration, actor_id=ACTOR, now=now, **kwargs)


def add_time(duration, *, member=MEMBER, role=ROLE, guild=GUILD, now=NOW, **kwargs):
    return timer_add(guild_id=guild, member_id=member, role_id=role, duration=duration, actor_id=ACTOR, now=now, **kwargs)


def remove_time(duration, *, member=MEMBER, role=ROLE, guild=GUILD, now=NOW):
    return timer_remove(guild_id=guild, member_id=member, role_id=role, duration=duration, actor_id=ACTOR, now=now)


def pause(*, member=MEMBER, role=ROLE, guild=GUILD, now=NOW, duration=None):
    return timer_pause(guild_id=guild, member_id=member, role_id=role, actor_id=ACTOR, duration=duration, now=now)


def resume(*, member=MEMBER, role=ROLE, guild=GUILD, now=NOW):
    return timer_resume(guild_id=guild, member_id=member, role_id=role, actor_id=ACTOR, now=now)


def clear(*, member=MEMBER, role=ROLE, guild=GUILD):
    return timer_clear(guild_id=guild, member_id=member, role_id=role, actor_id=ACTOR)


def stored(change_or_timer) -> TimedRole:
    """The row as the database has it (services return their in-memory copy)."""
    timer = getattr(change_or_timer, "timer", change_or_timer)
    return TimedRole.objects.get(pk=timer.pk)


def live_rows(*, member=MEMBER, role=ROLE, guild=GUILD):
    return list(timers_live(guild_id=guild, member_id=member, role_id=role))


def event_kinds(timer) -> list[str]:
    return list(TimerEvent.objects.filter(timer_id=timer.pk).order_by("pk").values_list("kind", flat=True))
