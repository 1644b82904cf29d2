"""The engine acts on a timer within 2 s of its time whatever second it falls due, across the
hand-overs between runs and clusters, and a cluster given SIGTERM stops cleanly at once.

Real `manage.py qcluster` processes (two, on one queue, as one site's clusters are) against
the fake Discord; latency is the fake's clock at the successful removal minus the expiry.
"""

from __future__ import annotations

import os
import random
import signal
import time
from datetime import timedelta

import pytest
from django.db.models import Count
from django.utils import timezone

from ops.models import SweepRun
from tests.bots.conftest import ADMIN, BOT, GUILD_ID
from tests.bots.sweeper_fixtures import (
    baton_pid,
    guild_of_holders,
    percentile,
    removal_times,
    removals,
    requests_to,
    role_path,
    start_clusters,
    wait_until,
)
from tests.fake_discord import FakeDiscord, FakeGuild
from timers.models import ExpiryOutcome, TimedRole, TimerEvent, TimerEventKind, TimerState
from timers.services import timer_set

pytestmark = pytest.mark.django_db(transaction=True)

FIRST_MEMBER = 310_000_000_000_000_000
P99_SECONDS = 2.0
STOP_SECONDS = 10.0


@pytest.fixture
def members() -> FakeGuild:
    return guild_of_holders(200, FIRST_MEMBER)


@pytest.fixture
def members_fake(members):
    with FakeDiscord(guilds=[members], bot_user=BOT) as running:
        yield running


@pytest.fixture
def clusters(members_fake, tmp_path):
    started = []

    def start(names: list[str], command: str = "qcluster"):
        found = start_clusters(members_fake, tmp_path, names, command=command)
        started.extend(found)
        return found

    yield start
    for cluster in started:
        cluster.stop()


def timers_every_second(guild: FakeGuild, count: int, *, lead: float = 4.0) -> list[TimedRole]:
    """``count`` one-minute timers, one falling due in each second from ``lead`` s on, at a random point of it."""
    vip, channel = guild.role("VIP").id, guild.channel("bot-log").id
    start = timezone.now() + timedelta(seconds=lead)
    timers = []
    for i in range(count):
        due = start + timedelta(seconds=i + random.random())
        change = timer_set(
            guild_id=GUILD_ID,
            member_id=FIRST_MEMBER + i,
            role_id=vip,
            duration=timedelta(minutes=1),
            actor_id=ADMIN.id,
            channel_id=channel,
            now=due - timedelta(minutes=1),
        )
        timers.append(change.timer)
    return timers


def latencies(fake: FakeDiscord, timers: list[TimedRole]) -> dict[int, float]:
    """Seconds from each timer's expiry to the successful removal of its role (missing: not removed)."""
    at = removal_times(fake)
    found = {}
    for timer in timers:
        path = role_path(GUILD_ID, timer.member_id, timer.role_id)
        if path in at:
            found[timer.pk] = at[path] - timer.expires_at.timestamp()
    return found


def all_expired(fake: FakeDiscord, timers: list[TimedRole]) -> bool:
    """Every role removed on Discord and every timer recorded as expired."""
    ids = [t.pk for t in timers]
    return len(latencies(fake, timers)) == len(ids) and not TimedRole.objects.filter(pk__in=ids, state=TimerState.ACTIVE).exists()


def assert_each_expired_once(fake: FakeDiscord, timers: list[TimedRole]) -> None:
    ids = [t.pk for t in timers]
    assert TimedRole.objects.filter(pk__in=ids, state=TimerState.EXPIRED, outcome=ExpiryOutcome.REMOVED).count() == len(ids)
    events = TimerEvent.objects.filter(timer_id__in=ids, kind=TimerEventKind.EXPIRE)
    assert events.count() == len(ids)
    assert not events.values("timer_id").annotate(n=Count("id")).filter(n__gt=1).exists()
    done = removals(fake)
    assert [done[role_path(GUILD_ID, t.member_id, t.role_id)] for t in timers] == [1] * len(timers)  # none doubled
    assert fake.unhandled == []


def run_every_second(fake, guild, clusters, *, count: int, run_seconds: float) -> dict[int, float]:
    alpha, beta = clusters(["latency-alpha", "latency-beta"])
    alpha.enqueue_sweep(run_seconds)
    wait_until(lambda: baton_pid() is not None, 30, "the first run", [alpha, beta])
    timers = timers_every_second(guild, count)
    wait_until(lambda: all_expired(fake, timers), count + 30, "timers left", [alpha, beta])
    assert_each_expired_once(fake, timers)
    # Every run in the window handed over to the next (the window spans several runs).
    wait_until(lambda: SweepRun.objects.count() >= count // run_seconds, run_seconds + 20, "runs recorded", [alpha, beta])
    return latencies(fake, timers)


def report(found: dict[int, float]) -> str:
    values = list(found.values())
    return f"n={len(values)} p50={percentile(values, 0.5):.3f}s p99={percentile(values, 0.99):.3f}s max={max(values):.3f}s"


@pytest.mark.postgres
def test_it_acts_on_a_timer_due_every_second_for_two_minutes_within_two_seconds(members_fake, members, clusters):
    found = run_every_second(members_fake, members, clusters, count=125, run_seconds=45)
    print("latency over 125 s, two clusters, 45 s runs:", report(found))
    assert percentile(list(found.values()), 0.99) <= P99_SECONDS, report(found)
    assert min(found.values()) >= 0  # never before its time


def test_it_acts_on_a_timer_due_every_second_across_short_runs_within_two_seconds(members_fake, members, clusters):
    found = run_every_second(members_fake, members, clusters, count=20, run_seconds=4)
    print("latency over 20 s, two clusters, 4 s runs:", report(found))
    assert percentile(list(found.values()), 0.99) <= P99_SECONDS, report(found)


@pytest.mark.postgres
@pytest.mark.parametrize(
    "command, target",
    [
        ("qcluster", "the-cluster-process"),  # Kubernetes, `kill`: the main process alone
        ("runworker", "its-process-group"),  # the Procfile's worker under honcho (make run) or Heroku: every process
    ],
)
def test_it_stops_on_sigterm_within_ten_seconds_and_the_other_cluster_takes_over_at_once(
    members_fake, members, clusters, command, target
):
    fake = members_fake
    alpha, beta = clusters(["stop-alpha", "stop-beta"], command)
    alpha.enqueue_sweep(45)
    wait_until(lambda: baton_pid() is not None, 30, "the first run", [alpha, beta])
    victim_pid = baton_pid()
    victim, survivor = (alpha, beta) if alpha.owns(victim_pid) else (beta, alpha)
    timers = timers_every_second(members, 24)
    # The removal due at ~8 s is held in flight by a 429 longer than the stop grace when the
    # SIGTERM lands: the stopping run must give it back, not keep it for a lease (30 s).
    held = timers[8]
    held_path = role_path(GUILD_ID, held.member_id, held.role_id)
    fake.rate_limit_next("DELETE", held_path, retry_after=8.0)
    wait_until(lambda: requests_to(fake, "DELETE", held_path), 30, "the held removal", [victim])

    signalled = time.time()
    if target == "the-cluster-process":
        victim.proc.send_signal(signal.SIGTERM)
    else:
        os.killpg(victim.pgid, signal.SIGTERM)
    victim.proc.wait(STOP_SECONDS)
    exited = time.time() - signalled
    wait_until(lambda: not victim.processes_left(), STOP_SECONDS - exited, "the cluster's children to exit", [victim])
    assert victim.proc.returncode == 0, victim.log()[-3000:]
    assert exited <= STOP_SECONDS
    print(f"SIGTERM to {target}: exited 0 after {exited:.2f} s")

    wait_until(lambda: all_expired(fake, timers), 60, "timers left", [survivor])
    assert_each_expired_once(fake, timers)
    found = latencies(fake, timers)
    taken_over = removal_times(fake)[held_path] - signalled
    assert taken_over < 6.0, f"the held timer was removed {taken_over:.1f} s after the SIGTERM"  # not after a lease
    after = {pk: lat for pk, lat in found.items() if TimedRole.objects.get(pk=pk).expires_at.timestamp() > signalled}
    assert after and max(after.values()) <= P99_SECONDS, report(after)  # the other cluster acted at once
    # The stopped run finished cleanly: it recorded its figures.
    assert SweepRun.objects.filter(worker__endswith=f":{victim_pid}").exists()
