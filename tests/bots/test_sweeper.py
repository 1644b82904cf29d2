"""The timer engine (bots.sweeper) against the fake Discord: warnings, pauses, expiry outcomes,
retries and back-off, rate limits, races with members' commands, and the q2 tasks.

Time is the test's: the engine gets a Clock and the services get the same instants as ``now=``.
Timers that are only about expiry run for one minute, so that no warning is due (a 1-minute
timer is already inside every default threshold when it is set).
"""

from __future__ import annotations

import asyncio
import os
from datetime import timedelta

import pytest
from django.utils import timezone

from bots.db import call
from bots.rest import DiscordRest
from bots.sweeper import Sweeper
from bots.tasks import sweep_timers, timer_role_apply
from ops.models import SweepRun
from tests.bots.conftest import ADMIN, ALICE, BOB, GUILD_ID
from tests.bots.sweeper_fixtures import (
    ROLE_PATH,
    Clock,
    T,
    clock,
    discord_fake,
    engine_connections_closed,
    expire_events,
    requests_to,
    role_path,
    stored,
    sweep_at,
)
from tests.fake_discord import FakeUser
from timers.models import ExpiryOutcome, TimedRole, TimerEvent, TimerEventKind, TimerState
from timers.services import timer_add, timer_clear, timer_pause, timer_set
from timers.services.sweeps import sweep_claim_expiries, sweep_record_expiries

pytestmark = pytest.mark.django_db(transaction=True)  # the engine reaches the database from sync_to_async threads

MISSING_PERMISSIONS = {"code": 50013, "message": "Missing Permissions"}


def seconds(n: float) -> timedelta:
    return timedelta(seconds=n)


def minutes(n: float) -> timedelta:
    return timedelta(minutes=n)


def hours(n: float) -> timedelta:
    return timedelta(hours=n)


def set_timer(member, role, duration, *, channel=None, now=T) -> TimedRole:
    return timer_set(
        guild_id=GUILD_ID,
        member_id=member.id,
        role_id=role.id,
        duration=duration,
        actor_id=ADMIN.id,
        channel_id=channel.id if channel else None,
        now=now,
    ).timer


def holding(fake, member, role) -> None:
    """The member holds the role on Discord, as the bot's /timer set would have left it."""
    fake.set_member_roles(GUILD_ID, member.id, sorted(fake.member_roles(GUILD_ID, member.id) | {role.id}))


def warn_details(timer) -> list[str]:
    return list(
        TimerEvent.objects.filter(timer_id=timer.pk, kind=TimerEventKind.WARN).order_by("pk").values_list("detail", flat=True)
    )


def removed_line(member, role) -> str:
    return f"<@{member.id}>'s <@&{role.id}> time is up; the role was removed."


# --- warnings ---------------------------------------------------------------------------------
def test_it_warns_at_60_10_and_1_minutes_once_each_and_again_after_time_is_added(discord_fake, guild, clock):
    fake = discord_fake
    vip, channel = guild.role("VIP"), guild.channel("bot-log")
    holding(fake, ALICE, vip)
    timer = set_timer(ALICE, vip, hours(2), channel=channel)

    def pass_at(offset):
        seen = len(fake.messages)
        sweep_at(clock, offset)
        return fake.messages[seen:]

    def check_warnings(offsets, expires_at):
        for offset in offsets:
            new = pass_at(offset)
            assert len(new) == 1, new
            assert new[0]["channel_id"] == channel.id
            assert new[0]["content"].startswith(
                f"⏳ <@{ALICE.id}>, your <@&{vip.id}> role ends <t:{int(expires_at.timestamp())}:R>"
            )
            mentions = new[0]["allowed_mentions"]
            assert (mentions["users"], mentions["parse"]) == ([ALICE.id], [])  # the member is pinged, nobody else
            assert pass_at(offset) == []  # the same moment again: nothing more

    check_warnings([minutes(60) + seconds(1), minutes(110) + seconds(1), minutes(119) + seconds(1)], T + hours(2))
    assert warn_details(timer) == ["60 min", "10 min", "1 min"]

    timer_add(guild_id=GUILD_ID, member_id=ALICE.id, role_id=vip.id, duration=hours(2), actor_id=ADMIN.id, now=clock())

    assert stored(timer).expires_at == T + hours(4)
    check_warnings([minutes(180) + seconds(1), minutes(230) + seconds(1), minutes(239) + seconds(1)], T + hours(4))
    assert warn_details(timer) == ["60 min", "10 min", "1 min"] * 2
    assert stored(timer).state == TimerState.ACTIVE
    assert fake.role_changes == []
    assert fake.dms == []
    assert fake.unhandled == []


def test_it_warns_by_dm_when_the_channel_refuses(discord_fake, guild, clock):
    fake = discord_fake
    vip, channel = guild.role("VIP"), guild.channel("bot-log")
    holding(fake, ALICE, vip)
    timer = set_timer(ALICE, vip, hours(2), channel=channel)
    fake.fail_next("POST", rf"/channels/{channel.id}/messages", 403, MISSING_PERMISSIONS)

    sweep_at(clock, minutes(60) + seconds(1))

    assert fake.messages == []
    (dm,) = fake.dms
    assert dm["recipient_id"] == ALICE.id
    assert dm["content"].startswith(f"⏳ <@{ALICE.id}>, your <@&{vip.id}> role ends")
    assert warn_details(timer) == ["60 min"]
    # The refusal was the channel's answer that time only: the next warning goes there again.
    sweep_at(clock, minutes(110) + seconds(1))
    assert [m["channel_id"] for m in fake.messages] == [channel.id]
    assert len(fake.dms) == 1
    assert warn_details(timer) == ["60 min", "10 min"]
    assert fake.unhandled == []


# --- pauses -------------------------------------------------------------------------------------
def test_it_neither_warns_nor_expires_a_paused_timer_and_resumes_it_at_its_deadline(discord_fake, guild, clock):
    fake = discord_fake
    vip, channel = guild.role("VIP"), guild.channel("bot-log")
    holding(fake, ALICE, vip)
    timer = set_timer(ALICE, vip, hours(2), channel=channel)
    timer_pause(guild_id=GUILD_ID, member_id=ALICE.id, role_id=vip.id, actor_id=ADMIN.id, duration=hours(3), now=T + minutes(30))

    # Past the 60-minute mark, past the original expiry, just before the pause deadline.
    for offset in (minutes(60) + seconds(1), hours(2) + seconds(1), hours(3) + minutes(29)):
        assert sweep_at(clock, offset) == 0
        assert stored(timer).state == TimerState.PAUSED
    assert fake.messages == [] and fake.dms == [] and fake.role_changes == []

    assert sweep_at(clock, hours(3) + minutes(30) + seconds(1)) == 1
    row = stored(timer)
    assert row.state == TimerState.ACTIVE
    # The 90 minutes left run from the deadline (T + 3h30), not from when the sweep got there.
    assert row.expires_at == T + hours(5)
    assert TimerEvent.objects.filter(timer_id=timer.pk, kind=TimerEventKind.AUTO_RESUME).count() == 1

    sweep_at(clock, hours(4) + seconds(1))
    assert warn_details(timer) == ["60 min"]
    assert stored(timer).state == TimerState.ACTIVE
    assert fake.role_changes == []

    sweep_at(clock, hours(5) + seconds(1))
    row = stored(timer)
    assert (row.state, row.outcome) == (TimerState.EXPIRED, ExpiryOutcome.REMOVED)
    assert fake.member_roles(GUILD_ID, ALICE.id) == set()
    assert expire_events(timer) == 1
    assert fake.unhandled == []


# --- expiry -------------------------------------------------------------------------------------
def test_it_removes_the_role_at_expiry_and_posts_a_notice(discord_fake, guild, clock):
    fake = discord_fake
    vip, channel = guild.role("VIP"), guild.channel("bot-log")
    holding(fake, ALICE, vip)
    timer = set_timer(ALICE, vip, minutes(1), channel=channel)

    assert sweep_at(clock, minutes(1) + seconds(1)) == 1

    assert fake.role_changes == [
        {
            "method": "DELETE",
            "guild_id": GUILD_ID,
            "user_id": ALICE.id,
            "role_id": vip.id,
            "reason": "Guildhall timer: time is up",
        }
    ]
    assert fake.member_roles(GUILD_ID, ALICE.id) == set()
    assert [(m["channel_id"], m["content"]) for m in fake.messages] == [(channel.id, removed_line(ALICE, vip))]
    row = stored(timer)
    assert (row.state, row.outcome, row.ended_at) == (TimerState.EXPIRED, ExpiryOutcome.REMOVED, clock())
    assert (row.lease_until, row.lease_owner, row.next_warn_at) == (None, "", None)
    assert expire_events(timer) == 1

    assert sweep_at(clock, minutes(5)) == 0
    assert len(requests_to(fake, "DELETE", role_path(GUILD_ID, ALICE.id, vip.id))) == 1
    assert len(fake.messages) == 1
    assert expire_events(timer) == 1
    assert fake.unhandled == []


def _member_leaves(fake, role):
    fake.remove_member(GUILD_ID, ALICE.id)


def _role_is_deleted(fake, role):
    fake.delete_role(GUILD_ID, role.id)


def _discord_refuses(fake, role):
    fake.fail_next("DELETE", role_path(GUILD_ID, ALICE.id, role.id), 403, MISSING_PERMISSIONS)


@pytest.mark.parametrize(
    "make_it_fail, outcome, code",
    [
        (_member_leaves, ExpiryOutcome.MEMBER_GONE, 10007),
        (_role_is_deleted, ExpiryOutcome.ROLE_GONE, 10011),
        (None, ExpiryOutcome.FORBIDDEN, 50013),  # the timer's role is above the bot's
        (_discord_refuses, ExpiryOutcome.FORBIDDEN, 50013),
    ],
    ids=["member-gone", "role-gone", "role-above-the-bot", "refused"],
)
def test_it_stores_a_refusal_as_the_outcome_without_retrying(discord_fake, guild, clock, make_it_fail, outcome, code):
    fake = discord_fake
    channel = guild.channel("bot-log")
    role = guild.role("VIP") if make_it_fail else guild.role("Moderator")
    holding(fake, ALICE, role)
    timer = set_timer(ALICE, role, minutes(1), channel=channel)
    if make_it_fail:
        make_it_fail(fake, role)

    sweep_at(clock, minutes(1) + seconds(1))
    sweep_at(clock, minutes(30))  # long after any back-off lease

    row = stored(timer)
    assert (row.state, row.outcome, row.attempts) == (TimerState.EXPIRED, outcome, 0)
    assert row.outcome_detail.startswith(f"{404 if code != 50013 else 403} {code}:")
    assert expire_events(timer) == 1
    assert len(requests_to(fake, "DELETE", role_path(GUILD_ID, ALICE.id, role.id))) == 1
    assert fake.role_changes == []
    notices = [m["content"] for m in fake.messages]
    if outcome == ExpiryOutcome.FORBIDDEN:
        # Admins are told that the role stays, and why.
        assert notices == [f"<@{ALICE.id}>'s <@&{role.id}> time is up, but I may not remove the role (check my permissions)."]
        assert role.id in fake.member_roles(GUILD_ID, ALICE.id)
    else:
        assert notices == []
    assert fake.unhandled == []


def test_it_retries_a_server_error_after_the_back_off_lease(discord_fake, guild, clock):
    fake = discord_fake
    vip, channel = guild.role("VIP"), guild.channel("bot-log")
    holding(fake, ALICE, vip)
    timer = set_timer(ALICE, vip, minutes(1), channel=channel)
    path = role_path(GUILD_ID, ALICE.id, vip.id)
    # discord.py retries 500/502/504/524 itself, sleeping 1, 3, 5, 7 s; a 503 comes straight back.
    fake.fail_next("DELETE", path, 503)

    sweep_at(clock, minutes(1) + seconds(1))
    failed_at = clock()

    row = stored(timer)
    assert (row.state, row.outcome, row.attempts) == (TimerState.ACTIVE, ExpiryOutcome.FAILED_RETRY, 1)
    assert row.outcome_detail.startswith("503 0:")
    assert row.lease_until == failed_at + seconds(30)
    assert expire_events(timer) == 0
    assert vip.id in fake.member_roles(GUILD_ID, ALICE.id)
    assert fake.messages == []

    sweep_at(clock, minutes(1) + seconds(20))  # inside the back-off: left alone
    assert len(requests_to(fake, "DELETE", path)) == 1

    sweep_at(clock, minutes(1) + seconds(32))
    row = stored(timer)
    assert (row.state, row.outcome) == (TimerState.EXPIRED, ExpiryOutcome.REMOVED)
    assert [r["status"] for r in requests_to(fake, "DELETE", path)] == [503, 204]
    assert fake.member_roles(GUILD_ID, ALICE.id) == set()
    assert [m["content"] for m in fake.messages] == [removed_line(ALICE, vip)]
    assert expire_events(timer) == 1
    assert fake.unhandled == []


def test_it_rides_out_a_bad_gateway_within_the_pass(discord_fake, guild, clock):
    fake = discord_fake
    vip = guild.role("VIP")
    holding(fake, ALICE, vip)
    timer = set_timer(ALICE, vip, minutes(1))
    path = role_path(GUILD_ID, ALICE.id, vip.id)
    fake.fail_next("DELETE", path, 502)  # the client backs off 1 s and tries again

    sweep_at(clock, minutes(1) + seconds(1))

    assert [r["status"] for r in requests_to(fake, "DELETE", path)] == [502, 204]
    row = stored(timer)
    assert (row.state, row.outcome, row.attempts) == (TimerState.EXPIRED, ExpiryOutcome.REMOVED, 0)
    assert fake.unhandled == []


def test_it_loses_nothing_in_a_429_storm(discord_fake, guild, clock):
    fake = discord_fake
    vip, channel = guild.role("VIP"), guild.channel("bot-log")
    members = [FakeUser(id=812_345_678_900_100_000 + i, name=f"booster{i}") for i in range(12)]
    for member in members:
        fake.add_member(GUILD_ID, member, [vip.id])
    timers = [set_timer(member, vip, minutes(1), channel=channel) for member in members]
    fake.rate_limit_next("DELETE", ROLE_PATH, retry_after=0.2, times=5)

    sweep_at(clock, minutes(1) + seconds(1))
    # discord.py waits out each 429 but tries a request 5 times at most; a removal that met
    # the whole storm is stored as failed-will-retry and taken again after its back-off lease.
    held_back = list(TimedRole.objects.filter(state=TimerState.ACTIVE))
    assert {(t.outcome, t.attempts, t.outcome_detail[:4]) for t in held_back} <= {(ExpiryOutcome.FAILED_RETRY, 1, "429 ")}
    sweep_at(clock, minutes(1) + seconds(32))

    assert {(stored(t).state, stored(t).outcome) for t in timers} == {(TimerState.EXPIRED, ExpiryOutcome.REMOVED)}
    assert [expire_events(t) for t in timers] == [1] * len(timers)
    for member in members:
        statuses = [r["status"] for r in requests_to(fake, "DELETE", role_path(GUILD_ID, member.id, vip.id))]
        assert statuses.count(204) == 1, (member.id, statuses)
        assert fake.member_roles(GUILD_ID, member.id) == set()
    assert sum(r["status"] == 429 for r in fake.requests) == 5
    lines = [line for m in fake.messages for line in m["content"].split("\n")]
    assert sorted(lines) == sorted(removed_line(member, vip) for member in members)
    assert fake.unhandled == []


# --- races with members' commands -------------------------------------------------------------------
def test_it_keeps_time_added_while_the_removal_is_in_flight():
    vip_id = 300_000_000_000_000_001
    timer = timer_set(guild_id=GUILD_ID, member_id=ALICE.id, role_id=vip_id, duration=hours(2), actor_id=ADMIN.id, now=T).timer

    claimed = sweep_claim_expiries(owner="worker-1", now=T + hours(2) + seconds(1))
    assert [t.pk for t in claimed] == [timer.pk]
    # The role is being taken on Discord right now when the member's /timer add lands.
    timer_add(
        guild_id=GUILD_ID, member_id=ALICE.id, role_id=vip_id, duration=hours(1), actor_id=ADMIN.id, now=T + hours(2) + seconds(2)
    )
    unrecorded = sweep_record_expiries(
        outcomes=[(timer.pk, ExpiryOutcome.REMOVED, "")], owner="worker-1", now=T + hours(2) + seconds(3)
    )

    assert unrecorded == {timer.pk}  # the engine gives the role back for these
    row = stored(timer)
    assert (row.state, row.outcome, row.expires_at) == (TimerState.ACTIVE, "", T + hours(3) + seconds(2))
    assert (row.lease_until, row.lease_owner) == (None, "")
    assert expire_events(timer) == 0


async def _when(predicate, timeout: float = 10) -> None:
    deadline = asyncio.get_running_loop().time() + timeout
    while not predicate():
        if asyncio.get_running_loop().time() > deadline:
            raise AssertionError(f"timed out waiting for {predicate}")
        await asyncio.sleep(0.01)


def test_it_gives_the_role_back_when_time_is_added_during_the_removal(discord_fake, guild, clock):
    fake = discord_fake
    vip, channel = guild.role("VIP"), guild.channel("bot-log")
    holding(fake, ALICE, vip)
    timer = set_timer(ALICE, vip, minutes(1), channel=channel)
    path = role_path(GUILD_ID, ALICE.id, vip.id)
    fake.rate_limit_next("DELETE", path, retry_after=0.5)  # holds the removal up long enough to add time
    clock.at(minutes(1) + seconds(1))

    async def go():
        async def add_time_meanwhile():
            await _when(lambda: requests_to(fake, "DELETE", path))
            await call(
                timer_add,
                guild_id=GUILD_ID,
                member_id=ALICE.id,
                role_id=vip.id,
                duration=hours(1),
                actor_id=ALICE.id,
                now=clock(),
            )

        async with DiscordRest() as rest:
            await asyncio.gather(Sweeper(rest, clock=clock).pass_once(), add_time_meanwhile())

    asyncio.run(go())

    assert [(c["method"], c["reason"]) for c in fake.role_changes] == [
        ("DELETE", "Guildhall timer: time is up"),
        ("PUT", "Guildhall timer: time was added"),
    ]
    assert vip.id in fake.member_roles(GUILD_ID, ALICE.id)
    row = stored(timer)
    assert (row.state, row.expires_at, row.lease_owner) == (TimerState.ACTIVE, clock() + hours(1), "")
    assert expire_events(timer) == 0
    assert fake.messages == []
    assert fake.unhandled == []


def test_it_does_not_give_the_role_back_when_another_worker_took_the_claim_over(discord_fake, guild, settings):
    fake = discord_fake
    vip, channel = guild.role("VIP"), guild.channel("bot-log")
    holding(fake, ALICE, vip)
    timer = set_timer(ALICE, vip, minutes(1), channel=channel)
    path = role_path(GUILD_ID, ALICE.id, vip.id)
    # Worker A's removal is held up past its lease; worker B takes the timer over and removes
    # the role too. Whatever A might put back arrives after B is done.
    fake.rate_limit_next("DELETE", path, retry_after=0.5)
    fake.rate_limit_next("DELETE", path, retry_after=1.0)
    fake.rate_limit_next("PUT", path, retry_after=1.5)
    clock_a, clock_b = Clock(), Clock()
    clock_a.at(minutes(1) + seconds(1))
    clock_b.at(minutes(1) + seconds(2 + settings.SWEEP_LEASE_SECONDS))

    async def go():
        async with DiscordRest() as rest_a, DiscordRest() as rest_b:
            worker_a = Sweeper(rest_a, owner="worker-a", clock=clock_a)
            worker_b = Sweeper(rest_b, owner="worker-b", clock=clock_b)

            async def b_once_a_is_held_up():
                await _when(lambda: requests_to(fake, "DELETE", path))
                return await worker_b.pass_once()

            await asyncio.gather(worker_a.pass_once(), b_once_a_is_held_up())

    asyncio.run(go())

    row = stored(timer)
    assert (row.state, row.outcome) == (TimerState.EXPIRED, ExpiryOutcome.REMOVED)
    assert expire_events(timer) == 1
    assert [c["method"] for c in fake.role_changes] == ["DELETE", "DELETE"]  # removal is idempotent
    assert fake.member_roles(GUILD_ID, ALICE.id) == set()
    assert [m["content"] for m in fake.messages] == [removed_line(ALICE, vip)]
    assert fake.unhandled == []


# --- the run loop and the q2 tasks ----------------------------------------------------------------
def test_it_acts_on_work_that_falls_due_during_a_run_within_a_second(discord_fake, guild):
    fake = discord_fake
    vip = guild.role("VIP")
    holding(fake, ALICE, vip)
    timer = set_timer(ALICE, vip, minutes(1), now=timezone.now() - minutes(1) + seconds(0.6))

    async def go():
        async with DiscordRest() as rest:
            return await Sweeper(rest).run(1.8)

    figures = asyncio.run(go())

    assert stored(timer).state == TimerState.EXPIRED
    assert figures.expired == 1
    (latency,) = figures.latencies_ms
    assert 0 <= latency < 1000
    assert fake.unhandled == []


def test_it_applies_a_timer_changed_elsewhere(discord_fake, guild):
    fake = discord_fake
    vip = guild.role("VIP")
    timer = set_timer(ALICE, vip, hours(2), now=timezone.now())

    assert timer_role_apply(timer.pk) == "granted"
    assert vip.id in fake.member_roles(GUILD_ID, ALICE.id)

    timer_clear(guild_id=GUILD_ID, member_id=ALICE.id, role_id=vip.id, actor_id=ADMIN.id)
    assert timer_role_apply(timer.pk) == ExpiryOutcome.REMOVED
    assert fake.member_roles(GUILD_ID, ALICE.id) == set()

    assert [(c["method"], c["reason"]) for c in fake.role_changes] == [
        ("PUT", "Guildhall timer: changed on the dashboard"),
        ("DELETE", "Guildhall timer: cleared on the dashboard"),
    ]
    assert timer_role_apply(timer.pk + 1000) == "gone"
    assert fake.unhandled == []


def test_it_records_each_sweep_run(discord_fake, guild):
    fake = discord_fake
    vip, member_role, channel = guild.role("VIP"), guild.role("Member"), guild.channel("bot-log")
    now = timezone.now()
    holding(fake, ALICE, vip)
    holding(fake, BOB, vip)
    due = set_timer(ALICE, vip, minutes(1), channel=channel, now=now - minutes(10))
    warned = set_timer(BOB, vip, hours(1), channel=channel, now=now - minutes(55))  # its 10-minute warning is due
    set_timer(ADMIN, member_role, hours(2), now=now - hours(1))
    timer_pause(
        guild_id=GUILD_ID, member_id=ADMIN.id, role_id=member_role.id, actor_id=ADMIN.id, duration=minutes(30), now=now - hours(1)
    )

    assert sweep_timers(seconds=0) == {"resumed": 1, "warned": 1, "expired": 1, "reported": 0, "failures": 0, "released": 0}

    run = SweepRun.objects.get()
    assert (run.resumed, run.warned, run.expired, run.reported, run.failures) == (1, 1, 1, 0, 0)
    assert run.worker.endswith(f":{os.getpid()}")
    assert run.started_at <= run.finished_at
    # The role went about nine minutes late (the timer ran out while no sweep was running).
    assert minutes(9).total_seconds() * 1000 <= run.latency_p50_ms == run.latency_max_ms < minutes(10).total_seconds() * 1000
    assert stored(due).state == TimerState.EXPIRED
    assert warn_details(warned) == ["10 min"]
    assert fake.unhandled == []
