"""The timer engine against the fake Discord: a timer given a new run after failed removals,
thresholds changed during a run, warnings never holding up expiries, and a halted pass
giving back what it claimed.

Time is the test's: the engine gets a Clock and the services get the same instants as ``now=``.
"""

from __future__ import annotations

import asyncio
import time
from datetime import timedelta

import pytest

from bots.db import call
from bots.rest import DiscordRest
from bots.sweeper import STOP_GRACE, Sweeper
from bots.sweeper.relay import BATON, Relay
from bots.sweeper.stop import StopFlag
from tests.bots.conftest import ADMIN, ALICE, BOB, GUILD_ID
from tests.bots.sweeper_fixtures import (
    T,
    clock,
    discord_fake,
    engine_connections_closed,
    requests_to,
    role_path,
    stored,
    sweep_at,
)
from tests.bots.test_sweeper import holding, set_timer, warn_details
from timers.models import ExpiryOutcome, TimerState
from timers.selectors import sweep_baton_holder
from timers.services import timer_warnings_set

pytestmark = pytest.mark.django_db(transaction=True)  # the engine reaches the database from sync_to_async threads


def seconds(n: float) -> timedelta:
    return timedelta(seconds=n)


def minutes(n: float) -> timedelta:
    return timedelta(minutes=n)


def test_it_acts_at_the_new_expiry_of_a_timer_set_again_after_failed_removals(discord_fake, guild, clock):
    fake = discord_fake
    vip = guild.role("VIP")
    holding(fake, ALICE, vip)
    timer = set_timer(ALICE, vip, minutes(1))
    path = role_path(GUILD_ID, ALICE.id, vip.id)
    fake.fail_next("DELETE", path, 503, times=6)
    # Five failures, each retried after its back-off lease (30 s, 1, 2, 4 min).
    at = minutes(1) + seconds(1)
    for back_off in (30, 60, 120, 240, 0):
        sweep_at(clock, at)
        at += seconds(back_off + 1)
    row = stored(timer)
    assert (row.state, row.attempts, row.outcome) == (TimerState.ACTIVE, 5, ExpiryOutcome.FAILED_RETRY)

    # An admin sets the timer again (the bot grants the role again): a new one-minute run.
    set_timer(ALICE, vip, minutes(1), now=clock())
    new_expiry = clock() + minutes(1)
    sweep_at(clock, clock.offset + minutes(1) + seconds(1))

    # It was claimed at its new time (not after the old 8-minute back-off) and its one failure
    # is the first attempt of the new run, not the sixth and last of the old one.
    assert len(requests_to(fake, "DELETE", path)) == 6
    row = stored(timer)
    assert (row.state, row.attempts, row.outcome) == (TimerState.ACTIVE, 1, ExpiryOutcome.FAILED_RETRY)
    assert row.lease_until == clock() + seconds(30)
    assert vip.id in fake.member_roles(GUILD_ID, ALICE.id)

    sweep_at(clock, clock.offset + seconds(31))
    row = stored(timer)
    assert (row.state, row.outcome, row.expires_at) == (TimerState.EXPIRED, ExpiryOutcome.REMOVED, new_expiry)
    assert fake.member_roles(GUILD_ID, ALICE.id) == set()
    assert fake.unhandled == []


def test_it_posts_and_records_a_threshold_added_during_a_run(discord_fake, guild, clock):
    fake = discord_fake
    vip, channel = guild.role("VIP"), guild.channel("bot-log")
    holding(fake, ALICE, vip)
    timer = set_timer(ALICE, vip, timedelta(hours=2), channel=channel)

    async def one_run():
        async with DiscordRest() as rest:
            sweeper = Sweeper(rest, clock=clock)  # one run: whatever it learns, it keeps
            clock.at(minutes(60) + seconds(1))
            await sweeper.pass_once()  # the 60-minute warning
            # 50 minutes left when an admin adds a 30-minute warning.
            await call(timer_warnings_set, guild_id=GUILD_ID, minutes=[60, 30, 10, 1], now=T + minutes(70))
            clock.at(minutes(90) + seconds(1))
            await sweeper.pass_once()

    asyncio.run(one_run())

    # Posted and recorded (never recorded as sent without being posted).
    assert warn_details(timer) == ["60 min", "30 min"]
    assert len(fake.messages) == 2
    assert fake.messages[1]["content"].startswith(f"⏳ <@{ALICE.id}>, your <@&{vip.id}> role ends")
    assert stored(timer).warnings_sent == [60, 30]
    assert fake.unhandled == []


def test_it_expires_a_timer_whose_warning_is_failing_at_its_time(discord_fake, guild, clock, settings):
    fake = discord_fake
    settings.SWEEP_LEASE_SECONDS = 120  # a long claim: under a shared lease the expiry would wait it out
    vip, channel = guild.role("VIP"), guild.channel("bot-log")
    holding(fake, ALICE, vip)
    timer_warnings_set(guild_id=GUILD_ID, minutes=[1], now=T)
    timer = set_timer(ALICE, vip, seconds(90), channel=channel)  # its 1-minute warning is due at T + 30 s
    fake.fail_next("POST", rf"/channels/{channel.id}/messages", 503, times=2)

    sweep_at(clock, seconds(31))  # the warning fails: its claim backs off for the lease
    assert warn_details(timer) == []
    assert stored(timer).warn_lease_until == clock() + seconds(120)

    sweep_at(clock, seconds(91))  # the timer's time is up, inside the warning's back-off

    row = stored(timer)
    assert (row.state, row.outcome) == (TimerState.EXPIRED, ExpiryOutcome.REMOVED)
    assert fake.member_roles(GUILD_ID, ALICE.id) == set()
    assert fake.unhandled == []


def test_it_removes_roles_before_it_posts_warnings_in_a_pass(discord_fake, guild, clock):
    fake = discord_fake
    vip, channel = guild.role("VIP"), guild.channel("bot-log")
    holding(fake, ALICE, vip)
    holding(fake, BOB, vip)
    warned = set_timer(BOB, vip, timedelta(hours=2), channel=channel)
    due = set_timer(ALICE, vip, minutes(61), channel=channel)

    sweep_at(clock, minutes(61) + seconds(1))  # BOB's 60-minute warning and ALICE's expiry, both due

    order = [(r["method"], r["path"]) for r in fake.requests if r["method"] in ("DELETE", "POST")]
    assert order[0] == ("DELETE", role_path(GUILD_ID, ALICE.id, vip.id))
    assert stored(due).state == TimerState.EXPIRED
    assert warn_details(warned) == ["60 min"]
    assert fake.unhandled == []


def test_it_gives_back_a_claim_still_in_flight_when_halted(discord_fake, guild, clock):
    fake = discord_fake
    vip = guild.role("VIP")
    holding(fake, ALICE, vip)
    timer = set_timer(ALICE, vip, minutes(1))
    path = role_path(GUILD_ID, ALICE.id, vip.id)
    fake.rate_limit_next("DELETE", path, retry_after=10.0)  # the removal hangs far past the stop grace
    clock.at(minutes(1) + seconds(1))

    async def go():
        async with DiscordRest() as rest:
            sweeper = Sweeper(rest, owner="stopping", clock=clock)
            passing = asyncio.ensure_future(sweeper.pass_once())
            while not requests_to(fake, "DELETE", path):
                await asyncio.sleep(0.01)
            halted = time.monotonic()
            sweeper.halt.set()  # the worker got SIGTERM
            await passing
            return sweeper, time.monotonic() - halted

    sweeper, took = asyncio.run(go())

    assert took < STOP_GRACE + 1.5
    assert sweeper.figures.released == 1
    row = stored(timer)
    # Not expired, not recorded as failed, and free for another worker at once (no lease to wait out).
    assert (row.state, row.outcome, row.attempts, row.lease_until, row.lease_owner) == (TimerState.ACTIVE, "", 0, None, "")

    sweep_at(clock, minutes(1) + seconds(2), owner="other")
    assert stored(timer).state == TimerState.EXPIRED
    assert fake.member_roles(GUILD_ID, ALICE.id) == set()
    assert fake.unhandled == []


def test_it_hands_over_at_once_when_the_worker_is_stopping(discord_fake, guild):
    queued: list[str] = []
    relay = Relay(seconds=40, queue_successor=queued.append)
    assert relay.take()
    stop = StopFlag()

    async def go():
        async with DiscordRest() as rest:
            running = asyncio.ensure_future(relay.run(rest, stop))
            await asyncio.sleep(0.5)
            stop.set()  # SIGTERM
            started = time.monotonic()
            await running
            return time.monotonic() - started

    took = asyncio.run(go())

    assert took < 1.5
    (token,) = queued  # the successor was queued, and the baton is waiting for it
    assert sweep_baton_holder(name=BATON) == token
    assert discord_fake.unhandled == []
