"""Timers across leaving and rejoining, reconciliation's records, and the settings for both (services)."""

from __future__ import annotations

import pytest
from django.test import override_settings

from tests.conftest import GUILD
from tests.timers.shortcuts import (
    MEMBER,
    NOW,
    OTHER_MEMBER,
    OTHER_ROLE,
    ROLE,
    event_kinds,
    hours,
    minutes,
    pause,
    set_timer,
    stored,
)
from timers.errors import TimerError
from timers.models import ExpiryOutcome, PauseKind, TimerEventKind, TimerReconcile, TimerSettings, TimerState
from timers.selectors import reconcile_plan, timers_due_expiry
from timers.services.membership import timer_member_left, timer_member_rejoined, timer_membership_settings_set
from timers.services.reconcile import (
    reconcile_claim,
    reconcile_finish,
    reconcile_members_gone,
    reconcile_members_seen,
    reconcile_release,
)
from timers.services.sweeps import sweep_claim_expiries, sweep_record_expiries

pytestmark = pytest.mark.django_db


def settings_for(**changes):
    return timer_membership_settings_set(guild_id=GUILD, **changes)


def leave(now=NOW, member=MEMBER):
    return timer_member_left(guild_id=GUILD, member_id=member, now=now)


def rejoin(now, joined_at=None, held=frozenset(), member=MEMBER):
    return timer_member_rejoined(guild_id=GUILD, member_id=member, joined_at=joined_at or now, held_role_ids=held, now=now)


# --- leaving -------------------------------------------------------------------------------
def test_it_keeps_a_timer_running_while_the_member_is_away_by_default():
    change = set_timer(hours(2))
    assert leave() == 1
    timer = stored(change)
    assert timer.state == TimerState.ACTIVE and timer.away_since == NOW
    assert timer.expires_at == NOW + hours(2)
    assert event_kinds(timer)[-1] == TimerEventKind.LEAVE


def test_it_pauses_a_timer_while_away_and_resumes_its_remainder_on_rejoin():
    settings_for(on_leave="pause")
    change = set_timer(hours(2))
    leave(now=NOW + minutes(30))
    timer = stored(change)
    assert timer.state == TimerState.PAUSED and timer.pause_kind == PauseKind.AWAY
    assert timer.paused_remaining == minutes(90)
    back = NOW + hours(30)
    grants = rejoin(back)
    assert [t.pk for t in grants] == [timer.pk]
    timer = stored(change)
    assert timer.state == TimerState.ACTIVE and timer.away_since is None
    assert timer.expires_at == back + minutes(90)
    assert event_kinds(timer)[-2:] == [TimerEventKind.LEAVE, TimerEventKind.REJOIN]


def test_a_repeated_leave_changes_nothing():
    change = set_timer(hours(2))
    leave()
    assert leave(now=NOW + minutes(5)) == 0
    assert stored(change).away_since == NOW
    assert event_kinds(change.timer).count(TimerEventKind.LEAVE) == 1


def test_a_member_paused_timer_stays_paused_with_its_own_kind_across_leave_and_rejoin():
    settings_for(on_leave="pause")
    change = set_timer(hours(2))
    pause(now=NOW)
    leave(now=NOW + minutes(10))
    assert stored(change).pause_kind == PauseKind.MEMBER
    grants = rejoin(NOW + hours(1))
    assert len(grants) == 1
    timer = stored(change)
    assert timer.state == TimerState.PAUSED and timer.pause_kind == PauseKind.MEMBER and timer.away_since is None


# --- rejoining -----------------------------------------------------------------------------
def test_a_rejoin_while_live_gives_the_role_back_once_however_often_the_event_comes():
    change = set_timer(hours(2))
    leave()
    joined = NOW + minutes(20)
    assert len(rejoin(joined)) == 1
    assert rejoin(joined) == []  # a second process or a replayed event
    assert event_kinds(change.timer).count(TimerEventKind.REJOIN) == 1


def test_a_rejoin_the_bot_never_saw_the_leave_of_still_gives_the_role_back_once():
    change = set_timer(hours(2))
    joined = NOW + minutes(20)
    assert len(rejoin(joined)) == 1
    assert rejoin(joined) == []
    assert len(rejoin(NOW + minutes(50))) == 1  # a later join (left and came back again)
    assert event_kinds(change.timer).count(TimerEventKind.REJOIN) == 2


def test_a_rejoin_holding_the_role_already_grants_nothing():
    set_timer(hours(2))
    leave()
    assert rejoin(NOW + minutes(5), held={ROLE}) == []


def test_a_timer_that_ended_while_away_gets_nothing_back_and_is_no_failure():
    change = set_timer(minutes(10))
    leave()
    later = NOW + minutes(11)
    claimed = sweep_claim_expiries(owner="w", now=later)
    assert [t.pk for t in claimed] == [change.timer.pk]
    sweep_record_expiries(outcomes=[(change.timer.pk, ExpiryOutcome.MEMBER_GONE, "404 10007")], owner="w", now=later)
    timer = stored(change)
    assert timer.state == TimerState.EXPIRED and timer.outcome == ExpiryOutcome.MEMBER_GONE and timer.attempts == 0
    assert rejoin(NOW + hours(1)) == []
    assert stored(change).state == TimerState.EXPIRED


def test_a_due_but_unswept_timer_is_not_given_back_on_rejoin():
    set_timer(minutes(10))
    leave()
    assert rejoin(NOW + minutes(15)) == []
    assert list(timers_due_expiry(now=NOW + minutes(15)))  # the sweep still expires it


def test_an_away_pause_never_expires():
    settings_for(on_leave="pause")
    set_timer(minutes(10))
    leave()
    assert list(timers_due_expiry(now=NOW + hours(48))) == []


# --- settings ------------------------------------------------------------------------------
@pytest.mark.parametrize(
    ("changes", "words"),
    [
        ({"on_leave": "stay"}, "On leave is one of `run`, `pause`"),
        ({"on_role_missing": "delete"}, "On role missing is one of `restore`, `pause`"),
        ({"notice": "loud"}, "Notice is one of `off`, `channel`, `dm`"),
        ({"notice": "channel"}, "Say which channel"),
        ({"notice": "channel", "notice_channel_id": -4}, "must be a channel id"),
    ],
)
def test_bad_settings_get_a_clear_message_and_change_nothing(changes, words):
    settings_for(on_leave="pause")
    with pytest.raises(TimerError, match=words):
        settings_for(**changes)
    saved = TimerSettings.objects.get(guild_id=GUILD)
    assert (saved.on_leave, saved.on_role_missing, saved.notice) == ("pause", "restore", "off")


def test_settings_are_saved_and_a_notice_channel_is_kept_only_for_channel_notices():
    saved = settings_for(on_leave=" PAUSE ", on_role_missing="pause", notice="channel", notice_channel_id=77)
    assert (saved.on_leave, saved.on_role_missing, saved.notice, saved.notice_channel_id) == ("pause", "pause", "channel", 77)
    saved = settings_for(notice="dm", notice_channel_id=77)
    assert saved.notice == "dm" and saved.notice_channel_id is None


# --- reconciliation ------------------------------------------------------------------------
def test_the_plan_names_members_with_live_timers_and_the_timed_roles():
    set_timer(hours(1))
    set_timer(hours(1), member=OTHER_MEMBER, role=OTHER_ROLE)
    members, roles = reconcile_plan(guild_id=GUILD)
    assert members == {MEMBER: {ROLE}, OTHER_MEMBER: {OTHER_ROLE}} and roles == {ROLE, OTHER_ROLE}


def test_a_role_taken_away_by_hand_is_recorded_and_given_back():
    change = set_timer(hours(2))
    result = reconcile_members_seen(guild_id=GUILD, members={MEMBER: set()}, now=NOW + minutes(1))
    assert [(r.timer_id, r.role_id) for r in result.restores] == [(change.timer.pk, ROLE)]
    assert event_kinds(change.timer)[-1] == TimerEventKind.ROLE_MISSING
    assert stored(change).state == TimerState.ACTIVE


def test_a_role_taken_away_by_hand_pauses_the_timer_until_the_role_is_back():
    settings_for(on_role_missing="pause")
    change = set_timer(hours(2))
    result = reconcile_members_seen(guild_id=GUILD, members={MEMBER: set()}, now=NOW + minutes(30))
    assert result.restores == [] and result.paused == 1
    timer = stored(change)
    assert timer.state == TimerState.PAUSED and timer.pause_kind == PauseKind.ROLE_MISSING
    assert timer.paused_remaining == minutes(90)
    again = reconcile_members_seen(guild_id=GUILD, members={MEMBER: set()}, now=NOW + hours(1))
    assert again.paused == 0 and event_kinds(change.timer).count(TimerEventKind.ROLE_MISSING) == 1
    back = reconcile_members_seen(guild_id=GUILD, members={MEMBER: {ROLE}}, now=NOW + hours(3))
    assert back.resumed == 1
    timer = stored(change)
    assert timer.state == TimerState.ACTIVE and timer.expires_at == NOW + hours(3) + minutes(90)


def test_a_member_found_gone_is_treated_as_having_left():
    settings_for(on_leave="pause")
    change = set_timer(hours(2))
    assert reconcile_members_gone(guild_id=GUILD, member_ids=[MEMBER], now=NOW + minutes(1)) == 1
    timer = stored(change)
    assert timer.away_since is not None and timer.pause_kind == PauseKind.AWAY
    assert reconcile_members_gone(guild_id=GUILD, member_ids=[MEMBER], now=NOW + minutes(2)) == 0
    # Found back (the join was missed): the away pause resumes and the role is given back.
    result = reconcile_members_seen(guild_id=GUILD, members={MEMBER: set()}, now=NOW + hours(1))
    assert len(result.restores) == 1 and stored(change).state == TimerState.ACTIVE


def test_a_guild_is_reconciled_by_one_process_and_again_only_when_due():
    with override_settings(RECONCILE_HOURS=6):
        assert reconcile_claim(guild_id=GUILD, owner="a", now=NOW)
        assert not reconcile_claim(guild_id=GUILD, owner="b", now=NOW)  # a holds it
        assert reconcile_finish(
            guild_id=GUILD, owner="a", checked=1, restored=1, paused=0, away=0, untracked=2, now=NOW + minutes(1)
        )
        assert not reconcile_claim(guild_id=GUILD, owner="b", now=NOW + hours(1))  # done an hour ago
        assert reconcile_claim(guild_id=GUILD, owner="b", now=NOW + hours(7))
        reconcile_release(guild_id=GUILD, owner="b", detail="stopped")
        assert reconcile_claim(guild_id=GUILD, owner="c", now=NOW + hours(7))  # released: due again at once
    record = TimerReconcile.objects.get(guild_id=GUILD)
    assert record.untracked == 2 and record.lease_owner == "c"


def test_leaving_rejoining_and_reconciling_are_in_the_activity_log():
    from guilds.models import LogEntry

    set_timer(hours(2))
    leave()
    rejoin(NOW + minutes(5))
    reconcile_members_seen(guild_id=GUILD, members={MEMBER: set()}, now=NOW + minutes(10))
    reconcile_claim(guild_id=GUILD, owner="a", now=NOW + minutes(11))
    reconcile_finish(guild_id=GUILD, owner="a", checked=1, restored=1, paused=0, away=0, untracked=3, now=NOW + minutes(12))
    entries = list(LogEntry.objects.filter(guild_id=GUILD).order_by("pk").values_list("kind", "text"))
    kinds = [kind for kind, _ in entries]
    assert kinds[-4:] == ["timer.leave", "timer.rejoin", "timer.role_missing", "timer.reconcile"]
    assert f"<@{MEMBER}>'s <@&{ROLE}> timer kept: the member left; it runs on" in entries[-4][1]
    assert "3 timed role(s) held with no running timer; not removed" in entries[-1][1]
