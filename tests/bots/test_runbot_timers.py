"""`manage.py runbot` against the fake Discord: /timer through real interactions."""

from __future__ import annotations

from datetime import timedelta

import pytest
from django.utils import timezone

from tests.bots.conftest import ADMIN, ALICE, GUILD_ID
from timers.models import TimedRole, TimerState

pytestmark = pytest.mark.django_db(transaction=True)


def slash(fake, user, options):
    channel = fake.guilds[GUILD_ID].text_channel.id
    return fake.send_slash(GUILD_ID, channel, user.id, "timer", options)


def answer_to(fake, interaction) -> dict:
    """The first visible answer: the callback's message, or the follow-up after a defer."""
    iid = int(interaction["id"])

    def found():
        for response in fake.interaction_responses:
            if int(response["interaction_id"]) == iid and response.get("type") == 4:
                return response["data"]
        for followup in fake.followups:
            if followup.get("token") == interaction["token"] and followup.get("method") in ("POST", "PATCH"):
                return followup.get("body") or followup
        return None

    return fake.wait_for(found, timeout=10, message="the interaction got no answer")


def test_it_sets_a_timer_adds_the_role_and_answers_with_the_expiry(fake, bot, guild):
    vip = guild.role("VIP")
    answer = answer_to(fake, slash(fake, ADMIN, [("set", {"user": ALICE.id, "time": "1h", "role": vip.id})]))
    change = fake.wait_for(lambda: next((c for c in fake.role_changes if c["role_id"] == vip.id), None))
    assert change["method"] == "PUT" and change["user_id"] == ALICE.id
    assert "Guildhall timer" in change["reason"]
    assert vip.id in fake.member_roles(GUILD_ID, ALICE.id)
    timer = TimedRole.objects.get(guild_id=GUILD_ID, member_id=ALICE.id, role_id=vip.id)
    assert timer.state == TimerState.ACTIVE
    assert abs((timer.expires_at - timezone.now() - timedelta(hours=1)).total_seconds()) < 30
    assert f"<t:{int(timer.expires_at.timestamp())}:R>" in answer["embeds"][0]["description"]
    assert fake.unhandled == []


def test_it_pauses_and_resumes_keeping_the_remainder(fake, bot, guild):
    vip = guild.role("VIP")
    answer_to(fake, slash(fake, ADMIN, [("set", {"user": ALICE.id, "time": "2h", "role": vip.id})]))
    paused = answer_to(fake, slash(fake, ADMIN, [("pause", {"user": ALICE.id, "role": vip.id})]))
    assert "paused" in paused["embeds"][0]["description"]
    timer = TimedRole.objects.get(guild_id=GUILD_ID, member_id=ALICE.id)
    assert timer.state == TimerState.PAUSED
    remainder = timer.paused_remaining
    assert timedelta(hours=1, minutes=59) < remainder <= timedelta(hours=2)
    answer_to(fake, slash(fake, ADMIN, [("resume", {"user": ALICE.id, "role": vip.id})]))
    timer.refresh_from_db()
    assert timer.state == TimerState.ACTIVE
    assert abs((timer.expires_at - timezone.now() - remainder).total_seconds()) < 30
    assert fake.unhandled == []


def test_it_shows_a_members_own_timers(fake, bot, guild):
    vip = guild.role("VIP")
    answer_to(fake, slash(fake, ADMIN, [("set", {"user": ALICE.id, "time": "1d", "role": vip.id})]))
    shown = answer_to(fake, slash(fake, ALICE, [("show", {})]))
    assert f"<@&{vip.id}>" in shown["embeds"][0]["description"]
    assert fake.unhandled == []


def test_it_refuses_a_member_without_manage_roles(fake, bot, guild):
    vip = guild.role("VIP")
    answer = answer_to(fake, slash(fake, ALICE, [("set", {"user": ALICE.id, "time": "1h", "role": vip.id})]))
    assert "Manage Roles" in answer["content"]
    assert not TimedRole.objects.exists() and fake.role_changes == []
    assert fake.unhandled == []


def test_it_refuses_a_role_above_its_own(fake, bot, guild):
    moderator = guild.role("Moderator")
    answer = answer_to(fake, slash(fake, ADMIN, [("set", {"user": ALICE.id, "time": "1h", "role": moderator.id})]))
    assert "above my highest role" in answer["content"]
    assert not TimedRole.objects.exists() and fake.role_changes == []
    assert fake.unhandled == []


def test_it_answers_a_bad_duration_clearly(fake, bot, guild):
    answer = answer_to(fake, slash(fake, ADMIN, [("set", {"user": ALICE.id, "time": "soon", "role": guild.role("VIP").id})]))
    assert "duration" in answer["content"]
    assert not TimedRole.objects.exists()
    assert fake.unhandled == []


def test_it_keeps_to_the_allowed_role_list(fake, bot, guild):
    member_role, vip = guild.role("Member"), guild.role("VIP")
    answer_to(fake, slash(fake, ADMIN, [("roles", [("add", {"role": member_role.id})])]))
    answer = answer_to(fake, slash(fake, ADMIN, [("set", {"user": ALICE.id, "time": "1h", "role": vip.id})]))
    assert "list of timed roles" in answer["content"]
    assert not TimedRole.objects.exists()
    assert fake.unhandled == []


def test_it_takes_the_role_when_time_is_removed_to_zero(fake, bot, guild):
    vip = guild.role("VIP")
    answer_to(fake, slash(fake, ADMIN, [("set", {"user": ALICE.id, "time": "30m", "role": vip.id})]))
    answer = answer_to(fake, slash(fake, ADMIN, [("remove", {"user": ALICE.id, "time": "1h", "role": vip.id})]))
    assert "removed" in answer["content"]
    fake.wait_for(lambda: vip.id not in fake.member_roles(GUILD_ID, ALICE.id))
    timer = TimedRole.objects.get(guild_id=GUILD_ID, member_id=ALICE.id)
    assert (timer.state, timer.outcome) == (TimerState.EXPIRED, "removed")
    assert fake.unhandled == []
