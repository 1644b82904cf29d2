"""`manage.py runbot` against the fake Discord: timed roles across leave and rejoin, and /timer settings."""

from __future__ import annotations

import time
from datetime import timedelta

import pytest
from django.utils import timezone

from tests.bots.conftest import ADMIN, ALICE, BOB, GUILD_ID, BotProcess, bot_env, wait_reply
from tests.bots.test_runbot_timers import answer_to, slash
from timers.models import ExpiryOutcome, PauseKind, TimedRole, TimerEvent, TimerEventKind, TimerSettings, TimerState
from timers.services import timer_set
from timers.services.membership import timer_membership_settings_set
from timers.services.sweeps import sweep_claim_expiries, sweep_record_expiries

pytestmark = pytest.mark.django_db(transaction=True)


def settings_slash(fake, user, sub, options):
    return answer_to(fake, slash(fake, user, [("settings", [(sub, options)])]))


def give_timer(guild, member=ALICE, duration=timedelta(hours=2)) -> TimedRole:
    vip = guild.role("VIP")
    return timer_set(guild_id=GUILD_ID, member_id=member.id, role_id=vip.id, duration=duration, actor_id=ADMIN.id).timer


def events(timer) -> list[str]:
    return list(TimerEvent.objects.filter(timer_id=timer.pk).order_by("pk").values_list("kind", flat=True))


def puts_of(fake, role_id, user_id) -> list[dict]:
    return [c for c in fake.role_changes if c["method"] == "PUT" and c["role_id"] == role_id and c["user_id"] == user_id]


def test_it_keeps_a_timer_running_when_its_member_leaves_and_gives_the_role_back_on_rejoin(fake, bot, guild):
    vip = guild.role("VIP")
    timer = give_timer(guild)
    fake.set_member_roles(GUILD_ID, ALICE.id, [vip.id])
    fake.remove_member(GUILD_ID, ALICE.id)
    fake.wait_for(lambda: TimedRole.objects.get(pk=timer.pk).away_since, message="the leave was not recorded")
    row = TimedRole.objects.get(pk=timer.pk)
    assert row.state == TimerState.ACTIVE and row.expires_at == timer.expires_at
    assert TimerEventKind.LEAVE in events(timer)
    shown = answer_to(fake, slash(fake, ADMIN, [("show", {"user": ALICE.id})]))
    assert "the member left" in shown["embeds"][0]["description"], shown

    fake.add_member(GUILD_ID, ALICE)  # rejoins with no roles, as on Discord
    put = fake.wait_for(lambda: next(iter(puts_of(fake, vip.id, ALICE.id)), None), message="the role was not given back")
    assert "rejoin" in put["reason"] and "Guildhall timer" in put["reason"]
    assert vip.id in fake.member_roles(GUILD_ID, ALICE.id)
    fake.wait_for(lambda: TimerEventKind.REJOIN in events(timer))
    assert TimedRole.objects.get(pk=timer.pk).away_since is None
    assert fake.unhandled == []


def test_it_pauses_a_timer_while_its_member_is_away_under_on_leave_pause(fake, bot, guild):
    answer = settings_slash(fake, ADMIN, "on-leave", {"mode": "pause"})
    assert "pause" in answer["content"]
    assert TimerSettings.objects.get(guild_id=GUILD_ID).on_leave == "pause"
    timer = give_timer(guild)
    fake.remove_member(GUILD_ID, ALICE.id)
    fake.wait_for(lambda: TimedRole.objects.get(pk=timer.pk).state == TimerState.PAUSED, message="not paused")
    row = TimedRole.objects.get(pk=timer.pk)
    assert row.pause_kind == PauseKind.AWAY and row.paused_remaining > timedelta(hours=1, minutes=59)
    fake.add_member(GUILD_ID, ALICE)
    fake.wait_for(lambda: TimedRole.objects.get(pk=timer.pk).state == TimerState.ACTIVE, message="not resumed")
    row = TimedRole.objects.get(pk=timer.pk)
    assert abs((row.expires_at - timezone.now() - timedelta(hours=2)).total_seconds()) < 30
    fake.wait_for(lambda: puts_of(fake, guild.role("VIP").id, ALICE.id))
    assert fake.unhandled == []


def test_a_timer_that_ended_while_away_gives_nothing_back(fake, bot, guild):
    vip = guild.role("VIP")
    timer = give_timer(guild, duration=timedelta(minutes=1))
    fake.remove_member(GUILD_ID, ALICE.id)
    fake.wait_for(lambda: TimedRole.objects.get(pk=timer.pk).away_since, message="the leave was not recorded")
    later = timezone.now() + timedelta(minutes=2)
    assert sweep_claim_expiries(owner="sweep", now=later, timer_ids=[timer.pk])  # as the engine does, Discord said 10007
    sweep_record_expiries(outcomes=[(timer.pk, ExpiryOutcome.MEMBER_GONE, "404 10007")], owner="sweep", now=later)
    fake.add_member(GUILD_ID, ALICE)
    wait_reply(fake, ADMIN, "!!ping", lambda m: m["content"].startswith("Pong"))  # the join was handled before this
    time.sleep(0.5)
    assert puts_of(fake, vip.id, ALICE.id) == []
    assert TimedRole.objects.get(pk=timer.pk).state == TimerState.EXPIRED
    assert TimerEventKind.REJOIN not in events(timer)


def test_two_processes_seeing_one_rejoin_give_the_role_back_once(fake, guild, transactional_db, tmp_path):
    vip = guild.role("VIP")
    timer = give_timer(guild)
    bots = [BotProcess(bot_env(fake), tmp_path / f"runbot-{i}.log") for i in range(2)]
    try:
        assert fake.wait_for_ready_sent(30, count=2), bots[0].log() + bots[1].log()
        fake.wait_for(lambda: TimerEventKind.ROLE_MISSING in events(timer), timeout=15)  # reconciled at ready
        fake.wait_for(lambda: puts_of(fake, vip.id, ALICE.id), timeout=15)
        fake.remove_member(GUILD_ID, ALICE.id)
        fake.wait_for(lambda: TimedRole.objects.get(pk=timer.pk).away_since, message="the leave was not recorded")
        before = len(puts_of(fake, vip.id, ALICE.id))
        fake.add_member(GUILD_ID, ALICE)
        fake.wait_for(lambda: len(puts_of(fake, vip.id, ALICE.id)) > before, message="the role was not given back")
        time.sleep(1.5)
        assert len(puts_of(fake, vip.id, ALICE.id)) == before + 1
        assert events(timer).count(TimerEventKind.REJOIN) == 1
    finally:
        for process in bots:
            process.stop()


def test_reconciliation_at_ready_gives_back_a_role_taken_by_hand_and_reports_one_held_without_timer(
    fake, guild, transactional_db, tmp_path
):
    vip = guild.role("VIP")
    timer = give_timer(guild)  # ALICE has the timer but not the role (taken away by hand)
    fake.set_member_roles(GUILD_ID, BOB.id, [vip.id])  # BOB holds the role with no timer
    process = BotProcess(bot_env(fake, RECONCILE_PAGE_SIZE="2", RECONCILE_REQUESTS_PER_SECOND="4"), tmp_path / "bot.log")
    try:
        assert fake.wait_for_ready_sent(30), process.log()
        put = fake.wait_for(lambda: next(iter(puts_of(fake, vip.id, ALICE.id)), None), timeout=15, message=process.log())
        assert "given back" in put["reason"]
        fake.wait_for(lambda: TimerEventKind.RESTORE in events(timer))
        assert events(timer)[-2:] == [TimerEventKind.ROLE_MISSING, TimerEventKind.RESTORE]
        record = fake.wait_for(lambda: _finished(GUILD_ID), timeout=10)
        assert record.untracked == 1 and record.restored == 1 and record.checked == 1
        assert vip.id in fake.member_roles(GUILD_ID, BOB.id)  # reported, never removed
        assert not [c for c in fake.role_changes if c["method"] == "DELETE"]
        assert "held with no running timer" in process.log()
        # Paced: 5 members in pages of 2 is 3 pages, at most 4 requests a second.
        pages = [r for r in fake.requests if r["method"] == "GET" and r["path"].endswith(f"/guilds/{GUILD_ID}/members")]
        pages = pages or [r for r in fake.requests if r["method"] == "GET" and f"/guilds/{GUILD_ID}/members?" in r["path"]]
        assert len(pages) == 3, pages
        paced = pages + [r for r in fake.requests if r["method"] == "PUT" and "/roles/" in r["path"]]
        stamps = sorted(r["at"] for r in paced)
        assert stamps[-1] - stamps[0] >= (len(stamps) - 1) / 4 - 0.05, stamps
    finally:
        process.stop()
    assert fake.unhandled == []


def _finished(guild_id):
    from timers.models import TimerReconcile

    return TimerReconcile.objects.filter(guild_id=guild_id, finished_at__isnull=False).first()


def test_reconciliation_pauses_a_timer_whose_role_was_taken_under_on_role_missing_pause(fake, guild, transactional_db, tmp_path):
    timer_membership_settings_set(guild_id=GUILD_ID, on_role_missing="pause")
    timer = give_timer(guild)
    process = BotProcess(bot_env(fake), tmp_path / "bot.log")
    try:
        assert fake.wait_for_ready_sent(30), process.log()
        fake.wait_for(_finished_for(GUILD_ID), timeout=15, message=process.log())
        row = TimedRole.objects.get(pk=timer.pk)
        assert row.state == TimerState.PAUSED and row.pause_kind == PauseKind.ROLE_MISSING
        assert puts_of(fake, guild.role("VIP").id, ALICE.id) == []
    finally:
        process.stop()


def _finished_for(guild_id):
    return lambda: _finished(guild_id)


def test_a_member_gone_at_reconciliation_is_treated_as_away(fake, guild, transactional_db, tmp_path):
    timer = give_timer(guild)
    with fake.state.lock:
        fake.guilds[GUILD_ID].members.pop(ALICE.id)  # left while no bot was running
    process = BotProcess(bot_env(fake), tmp_path / "bot.log")
    try:
        assert fake.wait_for_ready_sent(30), process.log()
        fake.wait_for(_finished_for(GUILD_ID), timeout=15, message=process.log())
        row = TimedRole.objects.get(pk=timer.pk)
        assert row.away_since is not None and row.state == TimerState.ACTIVE
        assert TimerEventKind.ROLE_MISSING not in events(timer) and TimerEventKind.LEAVE in events(timer)
    finally:
        process.stop()


def test_it_sends_a_grant_notice_to_the_channel_with_the_end_time(fake, bot, guild):
    log = guild.channel("bot-log")
    answer = settings_slash(fake, ADMIN, "notice", {"mode": "channel", "channel": log.id})
    assert f"<#{log.id}>" in answer["content"]
    vip = guild.role("VIP")
    answer_to(fake, slash(fake, ADMIN, [("set", {"user": ALICE.id, "time": "1h", "role": vip.id})]))
    notice = fake.wait_for(lambda: next((m for m in fake.messages if m["channel_id"] == log.id), None))
    ends = int(TimedRole.objects.get(member_id=ALICE.id).expires_at.timestamp())
    assert f"<t:{ends}:f>" in notice["content"] and f"<t:{ends}:R>" in notice["content"]
    assert "granted" in notice["content"]
    assert notice["allowed_mentions"]["parse"] == [] and [int(u) for u in notice["allowed_mentions"]["users"]] == [ALICE.id]
    answer_to(fake, slash(fake, ADMIN, [("add", {"user": ALICE.id, "time": "1h", "role": vip.id})]))
    fake.wait_for(lambda: any("extended" in m["content"] for m in fake.messages if m["channel_id"] == log.id))
    assert fake.unhandled == []


def test_it_sends_a_grant_notice_by_dm(fake, bot, guild):
    settings_slash(fake, ADMIN, "notice", {"mode": "dm"})
    vip = guild.role("VIP")
    answer_to(fake, slash(fake, ADMIN, [("set", {"user": ALICE.id, "time": "2h", "role": vip.id})]))
    dm = fake.wait_for(lambda: next(iter(fake.dms), None), message="no DM")
    ends = int(TimedRole.objects.get(member_id=ALICE.id).expires_at.timestamp())
    assert f"<t:{ends}:f>" in dm["content"] and f"<@&{vip.id}>" in dm["content"]
    assert dm["channel_id"] == fake.state.dm_by_user[ALICE.id]
    assert fake.unhandled == []


def test_no_notice_is_sent_when_notices_are_off(fake, bot, guild):
    vip = guild.role("VIP")
    answer_to(fake, slash(fake, ADMIN, [("set", {"user": ALICE.id, "time": "1h", "role": vip.id})]))
    wait_reply(fake, ADMIN, "!!ping", lambda m: m["content"].startswith("Pong"))
    assert fake.dms == [] and not any("granted" in m["content"] for m in fake.messages)


def test_settings_commands_refuse_bad_values_and_members_without_manage_roles(fake, bot, guild):
    answer = settings_slash(fake, ADMIN, "on-leave", {"mode": "stay"})
    assert "is one of `run`, `pause`" in answer["content"]
    answer = settings_slash(fake, ADMIN, "on-role-missing", {"mode": "delete"})
    assert "`restore`, `pause`" in answer["content"]
    answer = settings_slash(fake, ADMIN, "notice", {"mode": "channel"})
    assert "Say which channel" in answer["content"]
    answer = settings_slash(fake, ALICE, "on-leave", {"mode": "pause"})
    assert "Manage Roles" in answer["content"]
    assert not TimerSettings.objects.filter(guild_id=GUILD_ID).exclude(on_leave="run").exists()
    assert not TimerSettings.objects.filter(guild_id=GUILD_ID).exclude(notice="off").exists()
    shown = settings_slash(fake, ALICE, "show", {})
    assert "on leave (`on-leave`): timers run" in shown["content"] and "notices (`notice`): off" in shown["content"]
    assert fake.unhandled == []


def test_settings_prefix_forms(fake, bot, guild):
    reply = wait_reply(fake, ADMIN, "!!timer settings on-leave sometimes", lambda m: "is one of" in m["content"])
    assert "`run`, `pause`" in reply["content"]
    wait_reply(fake, ALICE, "!!timer settings on-leave pause", lambda m: "Manage Roles" in m["content"])
    wait_reply(fake, ADMIN, "!!timer settings on-role-missing pause", lambda m: m["content"].startswith("Saved."))
    log = guild.channel("bot-log")
    wait_reply(fake, ADMIN, f"!!timer settings notice channel <#{log.id}>", lambda m: m["content"].startswith("Saved."))
    saved = TimerSettings.objects.get(guild_id=GUILD_ID)
    assert (saved.on_leave, saved.on_role_missing, saved.notice, saved.notice_channel_id) == ("run", "pause", "channel", log.id)
    shown = wait_reply(fake, ALICE, "!!timer settings", lambda m: "on-role-missing" in m["content"])
    assert f"in <#{log.id}>" in shown["content"]
    assert fake.unhandled == []


def test_a_refused_member_list_leaves_the_guild_due_and_changes_nothing(fake, guild, transactional_db, tmp_path):
    from timers.models import TimerReconcile

    timer = give_timer(guild)
    fake.fail_next("GET", rf"/guilds/{GUILD_ID}/members", 403, {"code": 50001, "message": "Missing Access"})
    process = BotProcess(bot_env(fake), tmp_path / "bot.log")
    try:
        assert fake.wait_for_ready_sent(30), process.log()
        record = fake.wait_for(
            lambda: TimerReconcile.objects.filter(guild_id=GUILD_ID, detail__startswith="failed").first(),
            timeout=15,
            message=process.log(),
        )
        assert record.finished_at is None and record.lease_owner == ""  # given back: due again
        assert events(timer) == [TimerEventKind.SET] and fake.role_changes == []
        assert "reconciling guild" in process.log()
    finally:
        process.stop()
