"""Timer engine latency and shutdown with real worker clusters against the loopback fake Discord.

    createdb -h 127.0.0.1 -U postgres guildhall_bench   # once; the script migrates it itself
    DATABASE_URL=postgres://postgres@127.0.0.1:5432/guildhall_bench .venv/bin/python bench/sweep_latency.py [--seconds 130]

Starts the fake Discord in this process and two worker clusters (``manage.py runworker``,
the Procfile's worker; ``--command qcluster`` for plain q2) on one q2 queue, starts the
engine, and sets a one-minute timer (``timer_set``) to fall due in every second, at a
random point of it, for ``--seconds``. Latency is the fake's clock at the successful role
removal minus the timer's expiry; the sweep runs hand over every 45 s meanwhile, between
the clusters. Then, twice (SIGTERM to the cluster's main process, as Kubernetes sends it;
SIGTERM to its whole process group, as honcho under ``make run`` and Heroku send it), it
signals the cluster whose run holds the engine's baton while timers keep falling due each
second, and reports the seconds to its exit, whether any of its processes were left, and
the latency of the timers that fell due after the signal (the other cluster's).
"""

from __future__ import annotations

import argparse
import os
import random
import signal
import statistics
import sys
import tempfile
import time
from datetime import timedelta
from pathlib import Path

import _setup  # noqa: F401  (Django set-up)
from _setup import machine, print_table
from django.core.management import call_command
from django.utils import timezone
from django_q.models import OrmQ

from tests.bots.sweeper_fixtures import Cluster, baton_pid, percentile, removal_times, start_clusters, wait_until
from tests.fake_discord import FakeDiscord, FakeGuild, FakeUser
from timers.models import SweepBaton, TimedRole, TimerState
from timers.services import timer_set

GUILD = 886_000_000_000_000_000
FIRST_MEMBER = 887_000_000_000_000_000
ACTOR = 888_000_000_000_000_001
BOT = FakeUser(id=888_000_000_000_000_002, name="Guildhall", bot=True)
QUEUE = "guildhall-bench"
STOP_TIMERS = 20  # due one a second around each SIGTERM


class Timers:
    """One-minute timers due one a second, each for a member of its own."""

    def __init__(self, guild: FakeGuild) -> None:
        self.vip, self.channel = guild.role("VIP").id, guild.channel("bot-log").id
        self.next_member = FIRST_MEMBER
        self.all: list[TimedRole] = []

    def every_second(self, count: int, lead: float = 4.0) -> list[TimedRole]:
        start = timezone.now() + timedelta(seconds=lead)
        made = []
        for i in range(count):
            due = start + timedelta(seconds=i + random.random())
            made.append(
                timer_set(
                    guild_id=GUILD,
                    member_id=self.next_member,
                    role_id=self.vip,
                    duration=timedelta(minutes=1),
                    actor_id=ACTOR,
                    channel_id=self.channel,
                    now=due - timedelta(minutes=1),
                ).timer
            )
            self.next_member += 1
        self.all += made
        return made


def path_of(timer: TimedRole) -> str:
    return f"/guilds/{GUILD}/members/{timer.member_id}/roles/{timer.role_id}"


def latencies(fake: FakeDiscord, timers: list[TimedRole]) -> list[float]:
    at = removal_times(fake)
    return [at[path_of(t)] - t.ends_at.timestamp() for t in timers if path_of(t) in at]


def settled(fake: FakeDiscord, timers: list[TimedRole]) -> bool:
    ids = [t.pk for t in timers]
    return len(latencies(fake, timers)) == len(ids) and not TimedRole.objects.filter(pk__in=ids, state=TimerState.ACTIVE).exists()


def doubled(fake: FakeDiscord, timers: list[TimedRole]) -> int:
    paths = {path_of(t) for t in timers}
    counts: dict[str, int] = {}
    for r in fake.requests:
        if r["method"] == "DELETE" and r["status"] == 204 and r["path"] in paths:
            counts[r["path"]] = counts.get(r["path"], 0) + 1
    return sum(1 for n in counts.values() if n > 1)


def figures(values: list[float]) -> list[str]:
    return [f"{statistics.median(values):.3f}", f"{percentile(values, 0.99):.3f}", f"{max(values):.3f}"]


def stop_one(fake, timers: Timers, clusters: list[Cluster], how: str) -> list[str]:
    """SIGTERM the cluster holding the baton while timers fall due; the row of the table."""
    holder = baton_pid()
    victim = next(c for c in clusters if holder is not None and c.owns(holder))
    batch = timers.every_second(STOP_TIMERS)
    time.sleep(8)  # mid-run, with timers falling due
    signalled = time.time()
    if how == "main process":
        victim.proc.send_signal(signal.SIGTERM)
    else:
        os.killpg(victim.pgid, signal.SIGTERM)
    victim.proc.wait(30)
    exited = time.time() - signalled
    left = victim.processes_left()
    clusters.remove(victim)
    wait_until(lambda: settled(fake, batch), 60, "timers after the stop", clusters)
    after = [lat for t, lat in zip(batch, latencies(fake, batch), strict=True) if t.ends_at.timestamp() > signalled]
    victim.stop()
    return [
        how,
        f"{exited:.2f}",
        str(victim.proc.returncode),
        "yes" if left else "no",
        str(len(after)),
        f"{max(after):.3f}" if after else "-",
    ]


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--seconds", type=int, default=130, help="how many seconds a timer falls due in each (default 130)")
    parser.add_argument("--command", default="runworker", choices=["runworker", "qcluster"])
    args = parser.parse_args()
    call_command("migrate", verbosity=0)
    TimedRole.objects.filter(guild_id=GUILD).delete()
    SweepBaton.objects.all().delete()
    OrmQ.objects.filter(key=QUEUE).delete()

    members = args.seconds + 3 * STOP_TIMERS
    guild = FakeGuild.with_many_members(guild_id=GUILD, bot_user=BOT, count=members, first_user_id=FIRST_MEMBER)
    vip = guild.role("VIP").id
    for member_id in range(FIRST_MEMBER, FIRST_MEMBER + members):
        guild.members[member_id] = [vip]
    logs = Path(tempfile.mkdtemp(prefix="sweep-latency-"))
    clusters: list[Cluster] = []
    with FakeDiscord(guilds=[guild], bot_user=BOT) as fake:
        try:
            clusters += start_clusters(fake, logs, ["bench-alpha", "bench-beta"], queue=QUEUE, command=args.command)
            clusters[0].enqueue_sweep(45)
            wait_until(lambda: baton_pid() is not None, 60, "the first sweep run", clusters)
            timers = Timers(guild)
            started = timezone.now()
            steady = timers.every_second(args.seconds)
            wait_until(lambda: settled(fake, steady), args.seconds + 60, "timers left", clusters)
            found = latencies(fake, steady)
            runs = sweep_runs_since(started)
            stops = [stop_one(fake, timers, clusters, "main process")]
            clusters += start_clusters(fake, logs, ["bench-gamma"], queue=QUEUE, command=args.command)
            time.sleep(2)
            stops.append(stop_one(fake, timers, clusters, "process group"))
        finally:
            for cluster in clusters:
                cluster.stop()
        print(f"\nmachine: {machine()}; load average {os.getloadavg()[0]:.2f} at the end; command: manage.py {args.command}")
        print_table(
            f"Expiry latency, a timer due every second for {args.seconds} s, two clusters (seconds after due)",
            ["timers", "removed", "doubled", "sweep runs", "p50", "p99", "max"],
            [[str(len(steady)), str(len(found)), str(doubled(fake, steady)), str(runs), *figures(found)]],
        )
        print_table(
            "SIGTERM to the cluster holding the engine's baton, timers due every second meanwhile",
            ["SIGTERM to", "s to exit", "exit code", "processes left", "timers due after", "their max latency (s)"],
            stops,
        )
        TimedRole.objects.filter(guild_id=GUILD).delete()
        SweepBaton.objects.all().delete()
        OrmQ.objects.filter(key=QUEUE).delete()


def sweep_runs_since(started) -> int:
    from ops.models import SweepRun

    return SweepRun.objects.filter(finished_at__gte=started).count()


if __name__ == "__main__":
    sys.exit(main())
