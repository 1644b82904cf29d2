"""Real `manage.py qcluster` processes working one backlog of due timers against the fake Discord.

The engine is a relay of sweep runs (bots.sweeper.relay): each run queues its successor,
which any cluster's worker may pick up, and the two overlap while they hand over. Two
clusters must never expire a timer twice across those hand-overs; a cluster killed in the
middle of a batch leaves leases (and the baton) that run out, and the next run finishes its
work. PostgreSQL only (SKIP LOCKED, several processes on one database).
"""

from __future__ import annotations

from collections import Counter
from datetime import timedelta
from itertools import pairwise

import pytest
from django.db.models import Count
from django.utils import timezone

from ops.models import SweepRun
from tests.bots.conftest import BOT, GUILD_ID
from tests.bots.sweeper_fixtures import baton_pid, guild_of_holders, removals, role_path, start_clusters, wait_until
from tests.fake_discord import FakeDiscord, FakeGuild
from timers.models import ExpiryOutcome, SweepBaton, TimedRole, TimerEvent, TimerEventKind, TimerState

pytestmark = [pytest.mark.postgres, pytest.mark.django_db(transaction=True)]

COUNT = 2_000
FIRST_MEMBER = 300_000_000_000_000_000
RUN_SECONDS = 4  # short runs, so that the backlog is worked across several hand-overs
# Against the fake's rate-limit buckets (50 a second) a batch of 200 removals takes 1-3 s:
# the clusters get a lease longer than that, so that any removal done twice would be a
# claim shared, not a lease run out. A killed cluster's leases run out after 3 s.
SHARED_LEASE_SECONDS = 10
KILLED_LEASE_SECONDS = 3


@pytest.fixture
def crowd() -> FakeGuild:
    """A guild whose COUNT members each hold VIP."""
    return guild_of_holders(COUNT, FIRST_MEMBER)


@pytest.fixture
def crowd_fake(crowd):
    with FakeDiscord(guilds=[crowd], bot_user=BOT) as running:
        yield running


@pytest.fixture
def clusters(crowd_fake, tmp_path):
    """Start clusters with ``clusters(["a", "b"], lease_seconds)``; all are stopped at the end."""
    started = []

    def start(names: list[str], lease_seconds: int):
        found = start_clusters(crowd_fake, tmp_path, names, SWEEP_LEASE_SECONDS=str(lease_seconds))
        started.extend(found)
        return found

    yield start
    for cluster in started:
        cluster.stop()


def due_backlog(guild: FakeGuild) -> list[TimedRole]:
    """COUNT active timers, all due, oldest first in member order; no warnings pending."""
    now = timezone.now()
    vip, channel = guild.role("VIP").id, guild.channel("bot-log").id
    TimedRole.objects.bulk_create(
        [
            TimedRole(
                guild_id=GUILD_ID,
                member_id=FIRST_MEMBER + i,
                role_id=vip,
                state=TimerState.ACTIVE,
                expires_at=now - timedelta(minutes=10) + timedelta(milliseconds=i),
                warn_channel_id=channel,
                warnings_sent=[60, 10, 1],
                next_warn_at=None,
            )
            for i in range(COUNT)
        ],
        batch_size=1000,
    )
    return list(TimedRole.objects.order_by("expires_at"))


def assert_each_expired_once(fake: FakeDiscord, guild: FakeGuild, notices_lost_at_most: int = 0) -> None:
    assert TimedRole.objects.filter(state=TimerState.EXPIRED, outcome=ExpiryOutcome.REMOVED).count() == COUNT
    events = TimerEvent.objects.filter(kind=TimerEventKind.EXPIRE)
    assert events.count() == COUNT
    assert not events.values("timer_id").annotate(n=Count("id")).filter(n__gt=1).exists()
    vip = guild.role("VIP").id
    assert all(fake.member_roles(GUILD_ID, m) == set() for m in range(FIRST_MEMBER, FIRST_MEMBER + COUNT))
    assert set(removals(fake)) == {role_path(GUILD_ID, m, vip) for m in range(FIRST_MEMBER, FIRST_MEMBER + COUNT)}
    assert [c for c in fake.role_changes if c["method"] != "DELETE"] == []  # no role was handed back
    lines = Counter(line for m in fake.messages for line in m["content"].split("\n"))
    assert set(lines.values()) == {1}, lines.most_common(3)  # never a notice line twice
    assert COUNT - notices_lost_at_most <= len(lines) <= COUNT  # one per timer, but those a killed run never sent
    assert fake.unhandled == []


def test_it_expires_each_timer_once_across_hand_overs_between_two_clusters(crowd_fake, crowd, clusters):
    due_backlog(crowd)
    alpha, beta = clusters(["sweep-alpha", "sweep-beta"], SHARED_LEASE_SECONDS)

    alpha.enqueue_sweep(RUN_SECONDS)
    wait_until(lambda: not TimedRole.objects.filter(state=TimerState.ACTIVE).exists(), 60, "due timers left", [alpha, beta])
    # The relay never ends; each run records its figures when it hands over (every RUN_SECONDS).
    expired_by_runs = lambda: sum(SweepRun.objects.values_list("expired", flat=True))  # noqa: E731
    wait_until(lambda: expired_by_runs() == COUNT and SweepRun.objects.count() >= 3, 30, "runs handing over", [alpha, beta])

    assert_each_expired_once(crowd_fake, crowd)
    assert max(removals(crowd_fake).values()) == 1  # nothing was removed twice: overlapping runs never shared a claim
    runs = list(SweepRun.objects.order_by("started_at"))
    assert all(a.finished_at > b.started_at for a, b in pairwise(runs))  # each run overlapped the next


def test_it_finishes_the_work_of_a_cluster_killed_in_the_middle_of_a_batch(crowd_fake, crowd, clusters):
    timers = due_backlog(crowd)
    # One removal in the second batch is held up 2 s by a 429: that batch is still in flight
    # once the removals done pass 300, and that is when the cluster dies.
    held_up = timers[250]
    crowd_fake.rate_limit_next("DELETE", role_path(GUILD_ID, held_up.member_id, held_up.role_id), retry_after=2.0)
    doomed, successor = clusters(["sweep-doomed", "sweep-successor"], KILLED_LEASE_SECONDS)
    doomed.enqueue_sweep(60)
    wait_until(lambda: baton_pid() is not None, 20, "a run holding the baton", [doomed, successor])
    if not doomed.owns(baton_pid()):
        doomed, successor = successor, doomed  # whichever cluster picked the run up is the one to die

    wait_until(lambda: len(removals(crowd_fake)) >= 300, 30, "the second batch", [doomed])
    doomed.kill()
    done = len(removals(crowd_fake))
    expired = TimedRole.objects.filter(state=TimerState.EXPIRED).count()
    assert 0 < expired < done < COUNT  # roles were taken whose timers were never recorded
    # The dead cluster's claims: nobody may touch them until the lease ends.
    assert TimedRole.objects.filter(state=TimerState.ACTIVE).exclude(lease_owner="").exists()

    # The dead run's baton runs out too; then the watchdog's run (queued here) takes it.
    wait_until(lambda: SweepBaton.objects.get().held_until < timezone.now(), 20, "the dead run's baton to run out")
    successor.enqueue_sweep(45)
    wait_until(lambda: not TimedRole.objects.filter(state=TimerState.ACTIVE).exists(), 60, "due timers left", [successor])

    # A run killed after recording a batch and before posting its notices loses them: the
    # notices are a courtesy sent once at most, never repeated; one batch (200) at the most.
    assert_each_expired_once(crowd_fake, crowd, notices_lost_at_most=200)
    # Only the batch the kill interrupted was done twice (role removal is idempotent).
    assert sum(n > 1 for n in removals(crowd_fake).values()) <= 200
