"""Running the timer engine (bots.sweeper) against the fake Discord.

In-process, with time under the test's control: the engine runs with ``asyncio.run``; its
clock is a :class:`Clock` the test moves, and the services are given the same instants
through their ``now=`` parameters. Out of process: :class:`Cluster` is a real
`manage.py qcluster` on the test database.
"""

from __future__ import annotations

import asyncio
import math
import os
import signal
import subprocess
import sys
import time
from collections import Counter
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest
from asgiref.sync import sync_to_async
from django.db import connections

from bots.rest import DiscordRest
from bots.sweeper import Sweeper
from bots.sweeper.relay import BATON
from tests.bots.conftest import BOT, GUILD_ID, ROOT, bot_env
from tests.fake_discord import FakeDiscord, FakeGuild, pointed_at
from timers.models import TimedRole, TimerEvent, TimerEventKind
from timers.selectors import sweep_baton_holder

T = datetime(2025, 3, 3, 12, 0, tzinfo=UTC)  # when the tests' timers are set
ROLE_PATH = r"/guilds/\d+/members/\d+/roles/\d+"


class Clock:
    """A settable "now" for the Sweeper: ``base + offset``."""

    def __init__(self, base: datetime = T) -> None:
        self.base = base
        self.offset = timedelta(0)

    def __call__(self) -> datetime:
        return self.base + self.offset

    def at(self, offset: timedelta) -> datetime:
        """Move to ``base + offset`` and return that instant."""
        self.offset = offset
        return self()


@pytest.fixture
def clock() -> Clock:
    return Clock()


@pytest.fixture(autouse=True)
def engine_connections_closed():
    """Close the connection the engine used in asgiref's one sync thread, which outlives asyncio.run.

    (On PostgreSQL a session left open keeps the test database from being dropped.)
    """
    yield
    asyncio.run(sync_to_async(connections.close_all, thread_sensitive=True)())


@pytest.fixture
def discord_fake(fake: FakeDiscord, settings):
    """The fake Discord from tests/bots/conftest.py, with the product's settings pointing at it."""
    settings.DISCORD_API_BASE = fake.api_base
    settings.DISCORD_TOKEN = fake.token
    with pointed_at(fake):  # DiscordRest sets the process-wide Route.BASE; put it back afterwards
        yield fake


def sweep_pass(clock: Clock, *, owner: str | None = None) -> int:
    """One engine pass (its own REST client, as each sweep run has); the number of items handled."""

    async def go() -> int:
        async with DiscordRest() as rest:
            return await Sweeper(rest, owner=owner, clock=clock).pass_once()

    return asyncio.run(go())


def sweep_at(clock: Clock, offset: timedelta, *, owner: str | None = None) -> int:
    """Move the clock to ``T + offset`` and run one pass there."""
    clock.at(offset)
    return sweep_pass(clock, owner=owner)


def role_path(guild_id: int, member_id: int, role_id: int) -> str:
    return f"/guilds/{guild_id}/members/{member_id}/roles/{role_id}"


def requests_to(fake: FakeDiscord, method: str, path: str) -> list[dict]:
    return [r for r in fake.requests if r["method"] == method and r["path"] == path]


def expire_events(timer: TimedRole) -> int:
    return TimerEvent.objects.filter(timer_id=timer.pk, kind=TimerEventKind.EXPIRE).count()


def stored(timer: TimedRole) -> TimedRole:
    return TimedRole.objects.get(pk=timer.pk)


def guild_of_holders(count: int, first_member: int) -> FakeGuild:
    """A typical guild plus ``count`` members with consecutive ids from ``first_member``, each holding VIP."""
    guild = FakeGuild.with_many_members(guild_id=GUILD_ID, bot_user=BOT, count=count, first_user_id=first_member)
    vip = guild.role("VIP").id
    for member_id in range(first_member, first_member + count):
        guild.members[member_id] = [vip]
    return guild


# --- real `manage.py qcluster` processes ------------------------------------------------------
class Cluster:
    """A `manage.py qcluster` (or `runworker`, the Procfile's) in its own process group (so that
    it can be signalled or killed whole)."""

    def __init__(self, name: str, env: dict[str, str], log_path: Path, command: str = "qcluster") -> None:
        self.name = name
        self.env = env
        self.log_path = log_path
        self._log = open(log_path, "w")
        self.proc = subprocess.Popen(
            [sys.executable, "manage.py", command],
            cwd=ROOT,
            env=self.env,
            stdout=self._log,
            stderr=subprocess.STDOUT,
            start_new_session=True,
        )

    @property
    def pgid(self) -> int:
        return self.proc.pid  # start_new_session: the sentinel and workers are in its group

    def log(self) -> str:
        if not self._log.closed:
            self._log.flush()
        return self.log_path.read_text()

    def wait_running(self, timeout: float = 30) -> None:
        deadline = time.monotonic() + timeout
        while "running." not in self.log():
            if self.proc.poll() is not None or time.monotonic() > deadline:
                raise AssertionError(f"cluster {self.name} did not start:\n{self.log()}")
            time.sleep(0.05)

    def owns(self, pid: int) -> bool:
        """True when ``pid`` is one of this cluster's processes."""
        try:
            return os.getpgid(pid) == self.pgid
        except ProcessLookupError:
            return False

    def processes_left(self) -> bool:
        """True while any process of the cluster's group is alive."""
        try:
            os.killpg(self.pgid, 0)
        except ProcessLookupError:
            return False
        return True

    def enqueue_sweep(self, *args: object) -> None:
        """Queue ``bots.tasks.sweep_timers(*args)`` from a process configured like the cluster.

        Q_CLUSTER_NAME is also q2's signing salt here, so the test process can't sign for it.
        """
        code = f"from django_q.tasks import async_task; async_task('bots.tasks.sweep_timers', *{args!r})"
        done = subprocess.run(
            [sys.executable, "manage.py", "shell", "-c", code], cwd=ROOT, env=self.env, capture_output=True, text=True, timeout=60
        )
        assert done.returncode == 0, f"enqueueing on {self.name} failed:\n{done.stdout}{done.stderr}"

    def kill(self) -> None:
        """SIGKILL the sentinel and every worker at once, as a lost machine would."""
        os.killpg(self.pgid, signal.SIGKILL)
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
            os.killpg(self.pgid, signal.SIGKILL)  # whatever is left of the group
        except ProcessLookupError:
            pass
        if self.proc.poll() is None:
            self.proc.wait(5)
        if not self._log.closed:
            self._log.close()


def start_clusters(
    fake: FakeDiscord, tmp_path: Path, names: list[str], *, queue: str = "guildhall-test", command: str = "qcluster", **env: str
) -> list[Cluster]:
    """Start one cluster per name, all on one q2 queue (as one site's clusters are), and wait for them."""
    clusters = []
    for name in names:
        # This fake enforces no rate limits, and these tests are about exactly-once: the product's
        # own 50 requests/s hold would only make them slower (tests/bots/test_ratelimits_shared.py proves it).
        settings_env = {
            "Q_WORKERS": "2",
            "Q_TIMEOUT": "70",
            "Q_RETRY": "100",
            "Q_CLUSTER_NAME": queue,
            "DISCORD_RATE_LIMITS": "off",
        }
        cluster_env = bot_env(fake, **{**settings_env, **env})
        clusters.append(Cluster(name, cluster_env, tmp_path / f"{name}.log", command))
    for cluster in clusters:
        cluster.wait_running()
    return clusters


def wait_until(predicate, timeout: float, message: str, clusters=()) -> None:
    deadline = time.monotonic() + timeout
    while not predicate():
        if time.monotonic() > deadline:
            logs = "\n".join(f"--- {c.name}\n{c.log()[-4000:]}" for c in clusters)
            raise AssertionError(f"timed out after {timeout}s: {message}\n{logs}")
        time.sleep(0.05)


def baton_pid() -> int | None:
    """The worker process whose sweep run holds the engine's baton (None between runs)."""
    holder = sweep_baton_holder(name=BATON) or ""
    parts = holder.split(":")
    return int(parts[1]) if len(parts) == 3 and parts[1].isdigit() else None


def removals(fake: FakeDiscord) -> Counter:
    """Successful DELETEs per role path."""
    return Counter(r["path"] for r in fake.requests if r["method"] == "DELETE" and r["status"] == 204)


def removal_times(fake: FakeDiscord) -> dict[str, float]:
    """The (first) time each role path's removal succeeded, epoch seconds."""
    found: dict[str, float] = {}
    for r in fake.requests:
        if r["method"] == "DELETE" and r["status"] == 204:
            found.setdefault(r["path"], r["at"])
    return found


def percentile(values: list[float], q: float) -> float:
    ordered = sorted(values)
    return ordered[max(0, math.ceil(q * len(ordered)) - 1)]
