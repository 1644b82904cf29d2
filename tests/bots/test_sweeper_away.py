"""The timer engine with members away: no warnings to someone who left, and an expiry that is no failure."""

from __future__ import annotations

from datetime import timedelta

import pytest

from tests.bots.conftest import ADMIN, ALICE, GUILD_ID
from tests.bots.sweeper_fixtures import T, clock, discord_fake, engine_connections_closed, sweep_at  # the fixtures
from timers.models import ExpiryOutcome, TimedRole, TimerEvent, TimerEventKind, TimerState
from timers.services import timer_set
from timers.services.membership import timer_member_left, timer_member_rejoined

pytestmark = pytest.mark.django_db(transaction=True)
__all__ = ["clock", "discord_fake", "engine_connections_closed"]


def test_a_timer_running_on_while_its_member_is_away_warns_nobody_and_expires_as_member_gone(discord_fake, guild, clock):
    fake, vip, channel = discord_fake, guild.role("VIP"), guild.channel("bot-log")
    timer = timer_set(
        guild_id=GUILD_ID,
        member_id=ALICE.id,
        role_id=vip.id,
        duration=timedelta(hours=2),
        actor_id=ADMIN.id,
        channel_id=channel.id,
        now=T,
    ).timer
    fake.remove_member(GUILD_ID, ALICE.id)
    timer_member_left(guild_id=GUILD_ID, member_id=ALICE.id, now=T + timedelta(minutes=1))

    sweep_at(clock, timedelta(minutes=60, seconds=1))
    assert fake.messages == [] and fake.dms == []  # the 60-minute warning would ping someone who left
    sweep_at(clock, timedelta(hours=2, seconds=1))
    row = TimedRole.objects.get(pk=timer.pk)
    assert row.state == TimerState.EXPIRED and row.outcome == ExpiryOutcome.MEMBER_GONE and row.attempts == 0
    assert fake.messages == []  # no "the role was removed" notice: nothing was removed
    assert TimerEvent.objects.filter(timer_id=timer.pk, kind=TimerEventKind.EXPIRE).count() == 1

    # Back later: the timer ended while away, so nothing is given back.
    assert (
        timer_member_rejoined(guild_id=GUILD_ID, member_id=ALICE.id, joined_at=T + timedelta(hours=3), now=T + timedelta(hours=3))
        == []
    )
    assert fake.unhandled == []
