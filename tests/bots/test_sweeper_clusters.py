"""Real `manage.py qcluster` processes sweeping one backlog of due timers against the fake Discord.

Two clusters at once must not expire a timer twice; a cluster killed in the middle of a batch
leaves leases that run out, and the next sweep finishes its work. PostgreSQL only (SKIP LOCKED,
several processes on one database).
"""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import time
from collections import Counter
from datetime import timedelta
from pathlib import Path

import pytest
from django.db.models import Count
from django.utils import timezone
from django_q.models import Success

from ops.models import SweepRun
from tests.bots.conftest import BOT, GUILD_ID, ROOT, bot_env
from tests.bots.sweeper_fixtures import role_path
from tests.fake_discord import FakeDiscord, FakeGuild
from timers.models import ExpiryOutcome, TimedRole, TimerEvent, TimerEventKind, TimerState

pytestmark = [pytest.mark.postgres, pytest.mark.django_db(transaction=True)]

COUNT = 2_000
FIRST_MEMBER = 300_000_000_000_000_000
SWEEP_SECONDS = 20  # each sweep task keeps going this long (the schedule's runs last 55 s)
# Against the fake's rate-limit buckets (50 a second) a batch of 200 removals takes 1-3 s:
# two clusters at once get a lease longer than that, so that any removal done twice would
# be a claim shared, not a lease run out. A killed cluster's leases run out after 3 s.
SHARED_LEASE_SECONDS = 10
KILLED_LEASE_SECONDS = 3


class Cluster:
    """A `manage.py qcluster` in its own process group (so that it can be killed whole)."""

    def __init__(self, name: str, env: dict[str, str], log_path: Path) -> None:
        self.name = name
        self.env = env | {"Q_CLUSTER_NAME": name}
        self.log_path = log_path
        self._log = open(log_path, "w")
        self.proc = subprocess.Popen(
            [sys.executable, "manage.py", "qcluster"],
            cwd=ROOT,
            env=self.env,
            stdout=self._log,
            stderr=subprocess.STDOUT,
            start_new_session=True,
        )

    def log(self) -> str:
        if not self._log.closed:
            self._log.flush()
        return self.log_path.read_text()

    def wait_running(self, timeout: float = 20) -> None:
        deadline = time.monotonic() + timeout
        while "running." not in self.log():
            if self.proc.poll() is not None or time.monotonic() > deadline:
                raise AssertionError(f"cluster {self.name} did not start:\n{self.log()}")
            time.sleep(0.05)

    def enqueue_sweep(self, seconds: float = SWEEP_SECONDS) -> subprocess.Popen:
        """Queue a sweep for this cluster alone, from a process configured like it.

        Q_CLUSTER_NAME is also q2's signing salt here, so the test process can't sign for it.
        """
        code = f"from django_q.tasks import async_task; async_task('bots.tasks.sweep_timers', {seconds})"
        return subprocess.Popen(
            [sys.executable, "manage.py", "shell", "-c", code],
            cwd=ROOT,
            env=self.env,
            stdout=subprocess.PIPE,
            stderr=subprocess.STDOUT,
            text=True,
        )

    def kill(self) -> None:
        """SIGKILL the sentinel and every worker at once, as a lost machine would."""
        os.killpg(self.proc.pid, signal.SIGKILL)
        self.proc.wait(5)
        self._log.close()

    def stop(self, timeout: float = 20) -> None:
        if self.proc.poll() is None:
            self.proc.send_signal(signal.SIGTERM)
            try:
                self.proc.wait(timeout)
            except subprocess.TimeoutExpired:
                pass
        try:
            os.killpg(self.proc.pid, signal.SIGKILL)  # whatever is left of the group
        except ProcessLookupError:
            pass
        if self.proc.poll() is None:
            self.proc.wait(5)
        if not self._log.closed:
            self._log.close()


@pytest.fixture
def crowd() -> FakeGuild:
    """A guild whose COUNT members each hold VIP."""
    guild = FakeGuild.with_many_members(guild_id=GUILD_ID, bot_user=BOT, count=COUNT, first_user_id=FIRST_MEMBER)
    vip = guild.role("VIP").id
    for member_id in range(FIRST_MEMBER, FIRST_MEMBER + COUNT):
        guild.members[member_id] = [vip]
    return guild


@pytest.fixture
def crowd_fake(crowd):
    with FakeDiscord(guilds=[crowd], bot_user=BOT) as running:
        yield running


@pytest.fixture
def clusters(crowd_fake, tmp_path):
    """Start clusters with ``clusters("name", lease_seconds)``; all are stopped at the end."""
    started: list[Cluster] = []

    def start(name: str, lease_seconds: int) -> Cluster:
        env = bot_env(crowd_fake, Q_WORKERS="2", SWEEP_LEASE_SECONDS=str(lease_seconds), Q_TIMEOUT="70", Q_RETRY="100")
        cluster = Cluster(name, env, tmp_path / f"{name}.log")
        started.append(cluster)
        return cluster

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


def enqueue_sweeps(*clusters: Cluster, seconds: float = SWEEP_SECONDS) -> None:
    """Queue one sweep on each cluster, at about the same time."""
    for cluster, proc in [(c, c.enqueue_sweep(seconds)) for c in clusters]:
        out, _ = proc.communicate(timeout=30)
        assert proc.returncode == 0, f"enqueueing on {cluster.name} failed:\n{out}"


def wait_until(predicate, timeout: float, message: str, clusters=()) -> None:
    deadline = time.monotonic() + timeout
    while not predicate():
        if time.monotonic() > deadline:
            logs = "\n".join(f"--- {c.name}\n{c.log()[-3000:]}" for c in clusters)
            raise AssertionError(f"timed out after {timeout}s: {message}\n{logs}")
        time.sleep(0.1)


def removals(fake: FakeDiscord) -> Counter:
    """Successful DELETEs per role path."""
    return Counter(r["path"] for r in fake.requests if r["method"] == "DELETE" and r["status"] == 204)


def assert_each_expired_once(fake: FakeDiscord, guild: FakeGuild) -> None:
    assert TimedRole.objects.filter(state=TimerState.EXPIRED, outcome=ExpiryOutcome.REMOVED).count() == COUNT
    events = TimerEvent.objects.filter(kind=TimerEventKind.EXPIRE)
    assert events.count() == COUNT
    assert not events.values("timer_id").annotate(n=Count("id")).filter(n__gt=1).exists()
    vip = guild.role("VIP").id
    assert all(fake.member_roles(GUILD_ID, m) == set() for m in range(FIRST_MEMBER, FIRST_MEMBER + COUNT))
    assert set(removals(fake)) == {role_path(GUILD_ID, m, vip) for m in range(FIRST_MEMBER, FIRST_MEMBER + COUNT)}
    assert [c for c in fake.role_changes if c["method"] != "DELETE"] == []  # no role was handed back
    lines = Counter(line for m in fake.messages for line in m["content"].split("\n"))
    assert len(lines) == COUNT and set(lines.values()) == {1}, lines.most_common(3)  # one notice line per timer
    assert fake.unhandled == []


def test_it_expires_each_timer_once_with_two_clusters_sweeping(crowd_fake, crowd, clusters):
    due_backlog(crowd)
    alpha, beta = clusters("sweep-alpha", SHARED_LEASE_SECONDS), clusters("sweep-beta", SHARED_LEASE_SECONDS)
    alpha.wait_running()
    beta.wait_running()

    enqueue_sweeps(alpha, beta)
    wait_until(lambda: not TimedRole.objects.filter(state=TimerState.ACTIVE).exists(), 40, "due timers left", [alpha, beta])
    wait_until(lambda: Success.objects.filter(func="bots.tasks.sweep_timers").count() == 2, 30, "sweeps running", [alpha, beta])

    assert_each_expired_once(crowd_fake, crowd)
    assert max(removals(crowd_fake).values()) == 1  # nothing was removed twice: no lease ran out here
    runs = list(SweepRun.objects.all())
    assert len({run.worker for run in runs}) == 2
    assert sum(run.expired for run in runs) == COUNT
    assert all(run.expired > 0 for run in runs), [(r.worker, r.expired) for r in runs]  # both took a share


def test_it_finishes_the_work_of_a_cluster_killed_in_the_middle_of_a_batch(crowd_fake, crowd, clusters):
    timers = due_backlog(crowd)
    # One removal in the second batch is held up 2 s by a 429: that batch is still in flight
    # once the removals done pass 300, and that is when the cluster dies.
    held_up = timers[250]
    crowd_fake.rate_limit_next("DELETE", role_path(GUILD_ID, held_up.member_id, held_up.role_id), retry_after=2.0)
    doomed = clusters("sweep-doomed", KILLED_LEASE_SECONDS)
    doomed.wait_running()
    enqueue_sweeps(doomed)

    wait_until(lambda: len(removals(crowd_fake)) >= 300, 30, "the second batch", [doomed])
    doomed.kill()
    done = len(removals(crowd_fake))
    expired = TimedRole.objects.filter(state=TimerState.EXPIRED).count()
    assert 0 < expired < done < COUNT  # roles were taken whose timers were never recorded
    # The dead cluster's claims: nobody may touch them until the lease ends.
    assert TimedRole.objects.filter(state=TimerState.ACTIVE).exclude(lease_owner="").exists()

    successor = clusters("sweep-successor", KILLED_LEASE_SECONDS)
    successor.wait_running()
    # The fake's Discord-like rate limits allow ~150 removals/s in one guild: give the
    # successor room to finish the ~1,700 left even on a busy machine.
    enqueue_sweeps(successor, seconds=45)
    wait_until(lambda: not TimedRole.objects.filter(state=TimerState.ACTIVE).exists(), 60, "due timers left", [successor])
    wait_until(lambda: Success.objects.filter(func="bots.tasks.sweep_timers").count() == 1, 60, "the sweep running", [successor])

    assert_each_expired_once(crowd_fake, crowd)
    # Only the batch the kill interrupted was done twice (role removal is idempotent).
    assert sum(n > 1 for n in removals(crowd_fake).values()) <= 200
