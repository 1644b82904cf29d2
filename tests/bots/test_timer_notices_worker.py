"""Grant notices for timers changed on the dashboard or the API: sent by the worker's task, once."""

from __future__ import annotations

from datetime import timedelta

import pytest

from bots.tasks import timer_role_apply
from tests.bots.conftest import ADMIN, ALICE, GUILD_ID
from tests.bots.sweeper_fixtures import discord_fake  # the fixture
from timers.models import TimedRole
from timers.services import timer_add, timer_pause, timer_set
from timers.services.membership import timer_membership_settings_set

pytestmark = pytest.mark.django_db(transaction=True)


def notices(fake, channel_id):
    return [m for m in fake.messages if m["channel_id"] == channel_id]


def test_the_worker_tells_the_member_when_a_web_change_grants_or_extends_a_role(discord_fake, guild):
    fake, vip, log = discord_fake, guild.role("VIP"), guild.channel("bot-log")
    timer_membership_settings_set(guild_id=GUILD_ID, notice="channel", notice_channel_id=log.id)
    timer = timer_set(guild_id=GUILD_ID, member_id=ALICE.id, role_id=vip.id, duration=timedelta(hours=3), actor_id=ADMIN.id).timer
    assert timer_role_apply(timer.pk) == "granted"
    assert timer_role_apply(timer.pk) == "granted"  # q2 ran the task again: the nonce keeps it one post
    [granted] = notices(fake, log.id)
    ends = int(timer.ends_at.timestamp())
    assert "granted" in granted["content"] and f"<t:{ends}:f>" in granted["content"] and f"<t:{ends}:R>" in granted["content"]
    assert granted["nonce"] and granted["allowed_mentions"]["parse"] == []

    timer_add(guild_id=GUILD_ID, member_id=ALICE.id, role_id=vip.id, duration=timedelta(hours=1), actor_id=ADMIN.id)
    timer_role_apply(timer.pk)
    extended = notices(fake, log.id)[-1]
    ends = int(TimedRole.objects.get(pk=timer.pk).ends_at.timestamp())
    assert "extended" in extended["content"] and f"<t:{ends}:f>" in extended["content"]

    timer_pause(guild_id=GUILD_ID, member_id=ALICE.id, role_id=vip.id, actor_id=ADMIN.id)
    timer_role_apply(timer.pk)
    assert len(notices(fake, log.id)) == 2  # a pause is no grant
    assert fake.unhandled == []


def test_the_worker_sends_a_notice_by_dm_and_none_when_off(discord_fake, guild):
    fake, vip = discord_fake, guild.role("VIP")
    timer = timer_set(guild_id=GUILD_ID, member_id=ALICE.id, role_id=vip.id, duration=timedelta(hours=3), actor_id=ADMIN.id).timer
    timer_role_apply(timer.pk)
    assert fake.messages == [] and fake.dms == []
    timer_membership_settings_set(guild_id=GUILD_ID, notice="dm")
    timer_add(guild_id=GUILD_ID, member_id=ALICE.id, role_id=vip.id, duration=timedelta(hours=1), actor_id=ADMIN.id)
    timer_role_apply(timer.pk)
    [dm] = fake.dms
    assert dm["channel_id"] == fake.state.dm_by_user[ALICE.id] and "extended" in dm["content"]
