"""The timer sweep at 10k, 100k and 1M timers, against the BoostMon pattern in the same run.

    createdb -h 127.0.0.1 -U postgres guildhall_bench   # once; the script migrates it itself
    DATABASE_URL=postgres://postgres@127.0.0.1:5432/guildhall_bench .venv/bin/python bench/sweep.py [--sizes 10k,100k,1M]

Per table size: (1) the database work of a whole engine pass when nothing is due — the claim
queries, ``timer_auto_resume`` and ``timer_work_next_due`` called directly (median of 50) — as the
server's own time for those statements (EXPLAIN ANALYZE, summed), as wall time in Python,
and for the due-expiry probe alone; and the real ``Sweeper.run`` idling (its database calls
per tick, through ``bots.db.call``); (2) the BoostMon pattern: every active timer, ordered by
expiry, fetched in full (BoostMon does this every 30 s); (3) the ratio. Then, at the largest
size: throughput with 10,000 timers due at once, the real ``Sweeper`` and ``DiscordRest``
against the loopback fake Discord in this process (members present, holding the role);
expiry latency after due for 1,000 timers due at spread times over 20 s; and the peak
memory of a worker process (``bots.tasks.sweep_timers``) at the smallest and largest size,
beside a process that loads every active timer (the BoostMon pattern).

The fake's default rate-limit headers (a bucket of 50 per second) make discord.py itself
wait, so the throughput and latency runs have it advertise a bucket that never binds; a
2,000-timer burst against the default headers is reported beside them (see ``fake_bucket``).

Rows are seeded with ``INSERT … SELECT generate_series`` in a band of guild ids of its own
and removed at the end. PostgreSQL only (``--allow-sqlite`` runs it anyway, for a smoke test).
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import json
import logging
import math
import os
import statistics
import subprocess
import sys
import time
from datetime import timedelta

import _setup  # noqa: F401  (Django set-up)
from _setup import ROOT, QueryCounter, machine, print_table
from django.core.management import call_command
from django.db import connection, transaction
from django.test import override_settings
from django.utils import timezone

from bots.rest import DiscordRest
from bots.sweeper import Sweeper
from ops.models import SweepRun
from tests.fake_discord import FakeDiscord, FakeGuild, FakeUser
from tests.fake_discord import responses as fake_responses
from timers.models import ExpiryOutcome, TimedRole, TimerState
from timers.selectors import timer_work_next_due
from timers.services import timer_auto_resume
from timers.services.sweeps import sweep_claim_expiries, sweep_claim_reports, sweep_claim_warnings

# Every bench row lives in guilds [BAND, BAND + 10_000): the seeded timers spread over 1,000
# guilds, the throughput and latency timers in FAKE_GUILD (the guild the fake Discord serves).
BAND = 880_000_000_000_000_000
SEED_GUILDS = 1_000
FAKE_GUILD = BAND + 5_000
FIRST_MEMBER = 881_000_000_000_000_000
FIRST_FAKE_MEMBER = 882_000_000_000_000_000
SEED_ROLE = 883_000_000_000_000_000
WARN_CHANNEL = 884_000_000_000_000_000
BOT = FakeUser(id=885_000_000_000_000_001, name="Guildhall", bot=True)

BURST = 10_000  # due at once
SPREAD = 1_000  # due over SPREAD_SECONDS
SPREAD_LEAD, SPREAD_SECONDS = 3.0, 20.0
IDLE_RUNS = 50
MEMORY_SWEEP_SECONDS = 5
TABLE = TimedRole._meta.db_table

WORKER_CHILD = r"""
import json, os, sys
sys.path.insert(0, sys.argv[1])
os.environ.setdefault("DJANGO_SETTINGS_MODULE", "config.settings")
import django
django.setup()
from django_q.models import OrmQ
from bots.sweeper import worker_name
from bots.tasks import sweep_timers
from timers.models import SweepBaton
SweepBaton.objects.all().delete()  # a run of an earlier bench may have handed it on
figures = sweep_timers(seconds=float(sys.argv[2]))
SweepBaton.objects.all().delete()
OrmQ.objects.filter(key=os.environ.get("Q_CLUSTER_NAME", "guildhall")).delete()  # the successor it queued; no cluster here
status = dict(line.split(":", 1) for line in open("/proc/self/status").read().splitlines() if ":" in line)
print("RESULT " + json.dumps({"worker": worker_name(), "figures": figures,
      "hwm_kib": int(status["VmHWM"].split()[0]), "rss_kib": int(status["VmRSS"].split()[0])}))
"""

BOOSTMON_CHILD = r"""
import json, os, sys
sys.path.insert(0, sys.argv[1])
os.environ.setdefault("DJANGO_SETTINGS_MODULE", "config.settings")
import django
django.setup()
from django.db import connection
with connection.cursor() as cursor:
    cursor.execute("SELECT * FROM timers_timedrole WHERE state = 'active' ORDER BY expires_at")
    rows = cursor.fetchall()
status = dict(line.split(":", 1) for line in open("/proc/self/status").read().splitlines() if ":" in line)
print("RESULT " + json.dumps({"rows": len(rows), "hwm_kib": int(status["VmHWM"].split()[0]),
      "rss_kib": int(status["VmRSS"].split()[0])}))
"""


def parse_size(text: str) -> int:
    text = text.strip().lower().replace(",", "").replace("_", "")
    scale = {"k": 1_000, "m": 1_000_000}.get(text[-1:], 1)
    return int(float(text[:-1] if scale > 1 else text) * scale)


def label(n: int) -> str:
    return f"{n // 1_000_000}M" if n >= 1_000_000 and n % 1_000_000 == 0 else f"{n // 1000}k" if n % 1000 == 0 else str(n)


def pct(values: list[float], p: float) -> float:
    """Nearest-rank percentile."""
    ordered = sorted(values)
    return ordered[max(0, math.ceil(p / 100 * len(ordered)) - 1)]


def ms(seconds: float) -> float:
    return seconds * 1000


def fmt_ms(value: float) -> str:
    return f"{value:,.3f}" if value < 10 else f"{value:,.1f}" if value < 1000 else f"{value:,.0f}"


# --- seeding ------------------------------------------------------------------------------------
def is_postgres() -> bool:
    return connection.vendor == "postgresql"


def clean() -> None:
    """Remove every bench row (events first: the foreign key is deferred, not cascading)."""
    with connection.cursor() as cursor:
        cursor.execute(
            f"DELETE FROM timers_timerevent WHERE timer_id IN (SELECT id FROM {TABLE} WHERE guild_id >= %s AND guild_id < %s)",
            [BAND, BAND + 10_000],
        )
        cursor.execute(f"DELETE FROM {TABLE} WHERE guild_id >= %s AND guild_id < %s", [BAND, BAND + 10_000])


def seeded_count() -> int:
    with connection.cursor() as cursor:
        cursor.execute(f"SELECT count(*) FROM {TABLE} WHERE guild_id >= %s AND guild_id < %s", [BAND, BAND + SEED_GUILDS])
        return cursor.fetchone()[0]


def vacuum_analyze() -> None:
    with connection.cursor() as cursor:
        if is_postgres():
            cursor.execute(f"VACUUM (ANALYZE) {TABLE}")
            cursor.execute("VACUUM (ANALYZE) timers_timerevent")
        else:
            cursor.execute("ANALYZE")


SEED_SQL = f"""
INSERT INTO {TABLE} (guild_id, member_id, role_id, state, expires_at, paused_remaining, pause_until, pause_kind,
    warn_channel_id, warnings_sent, next_warn_at, issued_by_id, created_at, updated_at, ended_at, outcome,
    outcome_detail, attempts, lease_owner, lease_until, warn_lease_owner, warn_lease_until)
SELECT %(band)s + i %% {SEED_GUILDS}, %(member)s + i, %(role)s + i %% 50,
    CASE WHEN i %% 20 = 0 THEN 'paused' ELSE 'active' END,
    CASE WHEN i %% 20 = 0 THEN NULL ELSE e END,
    CASE WHEN i %% 20 = 0 THEN interval '1 hour' END,
    CASE WHEN i %% 20 = 0 THEN %(now)s::timestamptz + interval '2 days' + (i %% 86400) * interval '1 second' END,
    CASE WHEN i %% 20 = 0 THEN 'member' ELSE '' END,
    %(channel)s, '[]'::jsonb,
    CASE WHEN i %% 20 = 0 THEN NULL ELSE e - interval '60 minutes' END,
    NULL, %(now)s, %(now)s, NULL, '', '', 0, '', NULL, '', NULL
FROM generate_series(%(lo)s::bigint, %(hi)s::bigint) AS i,
     -- expiries 1 to 31 days out, in an order unrelated to insertion (like real timers)
     LATERAL (SELECT %(now)s::timestamptz + interval '1 day' + ((i * 7919) %% 2592000) * interval '1 second' AS e) AS t
"""


def grow_to(size: int) -> float:
    """Add seeded timers until there are ``size``; return the seconds it took."""
    start = time.perf_counter()
    have = seeded_count()
    if have < size:
        now = timezone.now()
        if is_postgres():
            with connection.cursor() as cursor:
                cursor.execute(
                    SEED_SQL,
                    {
                        "band": BAND,
                        "member": FIRST_MEMBER,
                        "role": SEED_ROLE,
                        "now": now,
                        "channel": WARN_CHANNEL,
                        "lo": have,
                        "hi": size - 1,
                    },
                )
        else:  # smoke runs only: the ORM, in batches
            rows = []
            for i in range(have, size):
                paused = i % 20 == 0
                expires = now + timedelta(days=1, seconds=(i * 7919) % 2592000)
                rows.append(
                    TimedRole(
                        guild_id=BAND + i % SEED_GUILDS,
                        member_id=FIRST_MEMBER + i,
                        role_id=SEED_ROLE + i % 50,
                        state=TimerState.PAUSED if paused else TimerState.ACTIVE,
                        expires_at=None if paused else expires,
                        paused_remaining=timedelta(hours=1) if paused else None,
                        pause_until=now + timedelta(days=2, seconds=i % 86400) if paused else None,
                        pause_kind="member" if paused else "",
                        warn_channel_id=WARN_CHANNEL,
                        next_warn_at=None if paused else expires - timedelta(minutes=60),
                    )
                )
            TimedRole.objects.bulk_create(rows, batch_size=5000)
    vacuum_analyze()
    return time.perf_counter() - start


# --- (1) the sweep with nothing due ------------------------------------------------------------------
OWNER = "bench-idle"


def idle_pass() -> None:
    """The database work of a whole engine pass with nothing due: Sweeper.pass_once's calls and the probe."""
    now = timezone.now()
    resumed = timer_auto_resume(now=now)
    warnings = sweep_claim_warnings(owner=OWNER, now=now).timers
    expiries = sweep_claim_expiries(owner=OWNER, now=now)
    reports = sweep_claim_reports(now=now)
    due = timer_work_next_due()
    if resumed or warnings or expiries or reports or (due is not None and due <= now):
        raise SystemExit(f"something is due in the idle measurement: {resumed=} {warnings=} {expiries=} {reports=} {due=}")


def explain(sql: str, params) -> dict:
    with transaction.atomic(), connection.cursor() as cursor:  # FOR UPDATE needs a transaction
        cursor.execute("EXPLAIN (ANALYZE, BUFFERS, FORMAT JSON) " + sql, params)
        plan = cursor.fetchone()[0]
    return (json.loads(plan) if isinstance(plan, str) else plan)[0]


def index_names(node: dict) -> set[str]:
    names = {node["Index Name"]} if "Index Name" in node else set()
    for child in node.get("Plans", ()):
        names |= index_names(child)
    return names


def measure_idle(counter: QueryCounter) -> dict:
    for _ in range(5):
        idle_pass()  # warm: connection, plans, caches
    before = counter.count
    idle_pass()
    queries = counter.count - before
    times = []
    for _ in range(IDLE_RUNS):
        start = time.perf_counter()
        idle_pass()
        times.append(time.perf_counter() - start)
    result = {"queries": queries, "db_ms": ms(statistics.median(times)), "db_p90_ms": ms(pct(times, 90))}
    if not is_postgres():
        return result | {"server_ms": None, "probe_ms": None, "probe_index": "n/a"}

    captured: list[tuple[str, object]] = []

    def capture(execute, sql, params, many, context):
        captured.append((sql, params))
        return execute(sql, params, many, context)

    with connection.execute_wrapper(capture):
        idle_pass()
    selects = [(sql, params) for sql, params in captured if sql.lstrip().upper().startswith("SELECT")]
    probe = next((sql, params) for sql, params in selects if '"expires_at" <=' in sql and "FOR UPDATE" in sql.upper())
    sums, probes = [], []
    for _ in range(7):
        sums.append(sum(explain(sql, params)["Execution Time"] for sql, params in selects))
    for _ in range(11):
        probes.append(explain(*probe))
    return result | {
        "server_ms": statistics.median(sums),
        "probe_ms": statistics.median(p["Execution Time"] for p in probes),
        "probe_index": ", ".join(sorted(index_names(probes[0]["Plan"]))) or "none (scan!)",
        "statements": len(captured),
    }


class _NoDiscord:
    """Stands in for DiscordRest in the idle engine: with nothing due the engine never calls it."""


async def engine_idle(counter: QueryCounter, seconds: float = 2.0) -> dict:
    """The real ``Sweeper.run`` with nothing due: the DB calls it makes per tick, timed.

    ``bots.sweeper.engine.call`` is wrapped to time each service call, and POLL_SECONDS is cut so
    that a couple of seconds give many ticks; a tick starts at each ``timer_work_next_due``.
    """
    import bots.sweeper.engine as engine

    calls: list[tuple[str, float]] = []
    real_call, real_poll = engine.call, engine.POLL_SECONDS

    async def timed(func, /, **kwargs):
        start = time.perf_counter()
        try:
            return await real_call(func, **kwargs)
        finally:
            calls.append((getattr(func, "__name__", "?"), time.perf_counter() - start))

    engine.call, engine.POLL_SECONDS = timed, 0.02
    before = counter.count
    try:
        figures = await Sweeper(_NoDiscord(), owner=OWNER).run(seconds)  # type: ignore[arg-type]
    finally:
        engine.call, engine.POLL_SECONDS = real_call, real_poll
    queries = counter.count - before
    if figures.resumed or figures.warned or figures.expired or figures.reported:
        raise SystemExit("the idle engine found work")
    ticks: list[list[tuple[str, float]]] = []
    for name, took in calls:
        if name == "timer_work_next_due" or not ticks:
            ticks.append([])
        ticks[-1].append((name, took))
    queries_per_tick = queries / len(ticks)
    ticks = ticks[1:] or ticks  # the first one opens the thread's connection
    return {
        "tick_ms": ms(statistics.median(sum(t for _, t in tick) for tick in ticks)),
        "queries_per_tick": queries_per_tick,
        "ticks": len(ticks),
    }


# --- (2) the BoostMon pattern -------------------------------------------------------------------------
BOOSTMON_SQL = f"SELECT * FROM {TABLE} WHERE state = 'active' ORDER BY expires_at"


def measure_boostmon(runs: int) -> dict:
    times, count = [], 0
    for _ in range(runs):
        start = time.perf_counter()
        with connection.cursor() as cursor:
            cursor.execute(BOOSTMON_SQL)
            count = len(cursor.fetchall())
        times.append(time.perf_counter() - start)
    server = None
    if is_postgres():
        server = statistics.median(explain(BOOSTMON_SQL, None)["Execution Time"] for _ in range(min(runs, 3)))
    return {"ms": ms(statistics.median(times)), "rows": count, "server_ms": server}


# --- memory -------------------------------------------------------------------------------------------
def child(code: str, *args: str, env: dict[str, str]) -> dict:
    done = subprocess.run(
        [sys.executable, "-c", code, str(ROOT), *args], cwd=ROOT, env=env, capture_output=True, text=True, timeout=300
    )
    line = next((ln for ln in done.stdout.splitlines() if ln.startswith("RESULT ")), None)
    if done.returncode != 0 or line is None:
        raise SystemExit(f"child failed ({done.returncode}):\n{done.stdout[-3000:]}\n{done.stderr[-3000:]}")
    return json.loads(line[len("RESULT ") :])


def measure_memory(fake: FakeDiscord, started) -> dict:
    env = {**os.environ, "DISCORD_TOKEN": fake.token, "DISCORD_API_BASE": fake.api_base, "SLOW_QUERY_MS": "600000"}
    worker = child(WORKER_CHILD, str(MEMORY_SWEEP_SECONDS), env=env)
    if any(worker["figures"].values()):
        raise SystemExit(f"the memory worker found work: {worker['figures']}")
    SweepRun.objects.filter(worker=worker["worker"], started_at__gte=started).delete()
    naive = child(BOOSTMON_CHILD, env=env)
    return {"worker_kib": worker["hwm_kib"], "naive_kib": naive["hwm_kib"], "naive_rows": naive["rows"]}


# --- throughput and latency against the fake Discord ----------------------------------------------------
THROTTLED = 2_000  # due at once, against the fake's default rate-limit headers
UNBOUND_BUCKET = 1_000_000


@contextlib.contextmanager
def fake_bucket(limit: int):
    """Make the fake advertise a rate-limit bucket of ``limit`` requests per second.

    Its default (50) is Discord-like, and discord.py's limiter sleeps out the whole 1 s window
    whenever more than ~25 requests of one route are in flight (remaining − outgoing ≤ 0), so
    against the default headers any client tops out near 100 requests/s per route: that
    measures the advertised bucket, not the engine. The throughput and latency figures use a
    bucket that never binds; a smaller run with the default headers is reported beside them.
    """
    saved = fake_responses.RATE_LIMIT
    fake_responses.RATE_LIMIT = limit
    try:
        yield
    finally:
        fake_responses.RATE_LIMIT = saved


def fake_guild() -> FakeGuild:
    """The guild the fake serves: every bench member holds VIP, which the bot may take away."""
    count = 2 * BURST + SPREAD + THROTTLED
    guild = FakeGuild.with_many_members(guild_id=FAKE_GUILD, bot_user=BOT, count=count, first_user_id=FIRST_FAKE_MEMBER)
    vip = guild.role("VIP")  # below the bot's role
    for user_id in range(FIRST_FAKE_MEMBER, FIRST_FAKE_MEMBER + count):
        guild.members[user_id] = [vip.id]
    return guild


class FakeElsewhere:
    """The same fake in its own process (bench/sweep_fake.py), bucket never binding."""

    def __init__(self) -> None:
        self.proc = subprocess.Popen(
            [sys.executable, str(ROOT / "bench" / "sweep_fake.py"), str(UNBOUND_BUCKET)],
            cwd=ROOT,
            stdin=subprocess.PIPE,
            stdout=subprocess.PIPE,
            text=True,
        )
        line = self.proc.stdout.readline()
        if not line:
            raise SystemExit("bench/sweep_fake.py did not start")
        info = json.loads(line)
        self.api_base, self.token, self.role_id, self.channel_id = (
            info["api_base"],
            info["token"],
            info["role_id"],
            info["channel_id"],
        )

    def count(self, first: int, count: int) -> dict:
        self.proc.stdin.write(f"count {first} {count}\n")
        self.proc.stdin.flush()
        return json.loads(self.proc.stdout.readline())

    def close(self) -> None:
        self.proc.stdin.close()
        self.proc.wait(15)


def insert_timers(first: int, count: int, role_id: int, channel_id: int, expiries) -> None:
    """Timers whose warnings have all gone out (so the sweep only expires them)."""
    now = timezone.now()
    TimedRole.objects.bulk_create(
        [
            TimedRole(
                guild_id=FAKE_GUILD,
                member_id=FIRST_FAKE_MEMBER + first + i,
                role_id=role_id,
                state=TimerState.ACTIVE,
                expires_at=expiries(i, now),
                warn_channel_id=channel_id,
                warnings_sent=[60, 10, 1],
                next_warn_at=None,
            )
            for i in range(count)
        ],
        batch_size=2000,
    )


def timers_of(first: int, count: int):
    return TimedRole.objects.filter(
        guild_id=FAKE_GUILD, member_id__range=(FIRST_FAKE_MEMBER + first, FIRST_FAKE_MEMBER + first + count - 1)
    )


async def sweep_until(token: str, count: int, limit_seconds: float) -> tuple[Sweeper, float]:
    """The real engine (Sweeper + DiscordRest) until ``count`` expiries are done; its wall time."""
    async with DiscordRest(token) as rest:
        sweeper = Sweeper(rest)
        stop = asyncio.Event()

        async def watch() -> None:
            while sweeper.figures.expired + sweeper.figures.failures < count:
                await asyncio.sleep(0.002)
            stop.set()

        watcher = asyncio.create_task(watch())
        start = time.perf_counter()
        await sweeper.run(limit_seconds, stop=stop)
        elapsed = time.perf_counter() - start
        watcher.cancel()
    return sweeper, elapsed


def on_the_fake(fake: FakeDiscord, first: int, count: int, role_id: int) -> tuple[int, int]:
    """(role DELETEs the fake applied to these members, members still holding the role)."""
    lo, hi = FIRST_FAKE_MEMBER + first, FIRST_FAKE_MEMBER + first + count
    deletes = sum(
        1 for c in fake.role_changes if c["method"] == "DELETE" and c["guild_id"] == FAKE_GUILD and lo <= c["user_id"] < hi
    )
    with fake.state.lock:
        members = fake.guilds[FAKE_GUILD].members
        holding = sum(1 for uid in range(lo, hi) if role_id in members.get(uid, ()))
    return deletes, holding


def burst(token: str, on_fake, first: int, count: int, role_id: int, channel_id: int) -> dict:
    """``count`` timers that all fell due within the last second, expired by the real engine.

    ``on_fake(first, count)`` reads the fake's side: DELETEs applied, members still holding
    the role, messages posted in the guild so far.
    """
    insert_timers(first, count, role_id, channel_id, lambda i, now: now - timedelta(seconds=1) + timedelta(microseconds=i * 50))
    posts_before = on_fake(first, count)["messages"]
    sweeper, elapsed = asyncio.run(sweep_until(token, count, 300))
    seen = on_fake(first, count)
    return {
        "count": count,
        "seconds": elapsed,
        "expired": sweeper.figures.expired,
        "failures": sweeper.figures.failures,
        "stored": timers_of(first, count).filter(state=TimerState.EXPIRED, outcome=ExpiryOutcome.REMOVED).count(),
        "deletes": seen["deletes"],
        "holding": seen["holding"],
        "notices": seen["messages"] - posts_before,
    }


def spread(fake: FakeDiscord, first: int, count: int, role_id: int, channel_id: int) -> dict:
    step = SPREAD_SECONDS / count  # due from SPREAD_LEAD s to SPREAD_LEAD + SPREAD_SECONDS s from now
    insert_timers(first, count, role_id, channel_id, lambda i, now: now + timedelta(seconds=SPREAD_LEAD + i * step))
    sweeper, elapsed = asyncio.run(sweep_until(fake.token, count, SPREAD_LEAD + SPREAD_SECONDS + 10))
    rows = timers_of(first, count).filter(state=TimerState.EXPIRED, outcome=ExpiryOutcome.REMOVED)
    stored = [ms((ended - expires).total_seconds()) for expires, ended in rows.values_list("expires_at", "ended_at")]
    removed = sweeper.figures.latencies_ms
    deletes, holding = on_the_fake(fake, first, count, role_id)
    return {
        "count": count,
        "seconds": elapsed,
        "expired": sweeper.figures.expired,
        "stored": len(stored),
        "deletes": deletes,
        "holding": holding,
        "removed": [statistics.median(removed), pct(removed, 99), max(removed)] if removed else [math.nan] * 3,
        "recorded": [statistics.median(stored), pct(stored, 99), max(stored)] if stored else [math.nan] * 3,
    }


def measure_engine(fake: FakeDiscord) -> dict:
    guild = fake.guilds[FAKE_GUILD]
    role_id, channel_id = guild.role("VIP").id, guild.text_channel.id

    def here(first: int, count: int) -> dict:
        deletes, holding = on_the_fake(fake, first, count, role_id)
        return {"deletes": deletes, "holding": holding, "messages": len(fake.messages)}

    with fake_bucket(UNBOUND_BUCKET):
        unbound = burst(fake.token, here, 0, BURST, role_id, channel_id)
        latency = spread(fake, BURST, SPREAD, role_id, channel_id)
    throttled = burst(fake.token, here, BURST + SPREAD, THROTTLED, role_id, channel_id)
    elsewhere = FakeElsewhere()
    try:
        with override_settings(DISCORD_API_BASE=elsewhere.api_base):
            apart = burst(
                elsewhere.token, elsewhere.count, BURST + SPREAD + THROTTLED, BURST, elsewhere.role_id, elsewhere.channel_id
            )
    finally:
        elsewhere.close()
    return {"burst": unbound, "apart": apart, "throttled": throttled, "spread": latency}


# --- main ---------------------------------------------------------------------------------------------
def measure_size(counter: QueryCounter, size: int, boostmon_runs: int) -> dict:
    idle = measure_idle(counter)
    engine = asyncio.run(engine_idle(counter))
    boost = measure_boostmon(boostmon_runs) if boostmon_runs else None
    return {"size": size, "idle": idle, "engine": engine, "boost": boost}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--sizes", default="10k,100k,1M", help="table sizes, comma-separated (default 10k,100k,1M)")
    parser.add_argument("--allow-sqlite", action="store_true", help="run on SQLite anyway (smoke test; the figures mean little)")
    parser.add_argument("--keep", action="store_true", help="leave the seeded rows in place at the end")
    args = parser.parse_args()
    sizes = sorted({parse_size(s) for s in args.sizes.split(",") if s.strip()})
    if not is_postgres() and not args.allow_sqlite:
        raise SystemExit(
            f"bench/sweep.py measures PostgreSQL, but DATABASE_URL gives {connection.vendor}: set "
            "DATABASE_URL=postgres://postgres@127.0.0.1:5432/guildhall_bench (createdb it first), "
            "or pass --allow-sqlite for a smoke run."
        )
    logging.getLogger("config.database").setLevel(logging.ERROR)  # the BoostMon scans are slow on purpose
    counter = QueryCounter()
    wall = time.perf_counter()
    load_start = os.getloadavg()
    started = timezone.now()
    call_command("migrate", verbosity=0, interactive=False)
    clean()

    rows, memory, seeding = [], {}, {}
    with (
        FakeDiscord(guilds=[fake_guild()], bot_user=BOT) as fake,
        override_settings(DISCORD_TOKEN=fake.token, DISCORD_API_BASE=fake.api_base),
    ):
        for size in sizes:
            seeding[size] = grow_to(size)
            row = measure_size(counter, size, 3 if size >= 1_000_000 else 5)
            rows.append(row)
            print(
                f"[{label(size)}] seeded in {seeding[size]:.1f} s; idle pass {row['idle']['db_ms']:.3f} ms "
                f"(server {row['idle']['server_ms'] or 0:.3f} ms); engine tick {row['engine']['tick_ms']:.3f} ms; "
                f"BoostMon {row['boost']['ms']:.1f} ms",
                file=sys.stderr,
                flush=True,
            )
            if size in (sizes[0], sizes[-1]):
                memory[size] = measure_memory(fake, started)
        engine = measure_engine(fake)
        print(
            f"[engine] {engine['burst']['expired']:,} expired in {engine['burst']['seconds']:.2f} s", file=sys.stderr, flush=True
        )
        # Not vacuumed: the expired rows' old versions still sit in the due indexes, as they do
        # until autovacuum comes by after a burst.
        after = measure_size(counter, sizes[-1], 0)
    if not args.keep:
        clean()
    wall = time.perf_counter() - wall

    # --- tables ----------------------------------------------------------------------------------------
    largest = label(sizes[-1])
    na = lambda v: fmt_ms(v) if v is not None else "n/a"  # noqa: E731
    table = []
    for r in rows + [after]:
        idle, engine_idle_row, boost = r["idle"], r["engine"], r["boost"]
        name = label(r["size"]) if boost else f"{label(r['size'])}, after the engine runs"
        table.append(
            [
                name,
                str(idle["queries"]),
                na(idle["server_ms"]),
                fmt_ms(idle["db_ms"]),
                na(idle["probe_ms"]),
                f"{engine_idle_row['queries_per_tick']:.0f}",
                fmt_ms(engine_idle_row["tick_ms"]),
                f"{boost['rows']:,}" if boost else "—",
                fmt_ms(boost["ms"]) if boost else "—",
                na(boost["server_ms"]) if boost else "—",
                (
                    f"{boost['server_ms'] / idle['server_ms']:,.0f}x"
                    if boost and boost["server_ms"] and idle["server_ms"]
                    else "—"
                ),
                f"{boost['ms'] / idle['db_ms']:,.0f}x" if boost else "—",
            ]
        )
    print_table(
        f"Sweep with nothing due vs the BoostMon pattern — {machine()}",
        [
            "timers",
            "queries/pass",
            "DB ms/pass (server)",
            "ms/pass (client)",
            "due-expiry probe ms",
            "queries/engine tick",
            "engine tick ms",
            "BoostMon rows",
            "BoostMon ms (client)",
            "BoostMon ms (server)",
            "ratio (server)",
            "ratio (client)",
        ],
        table,
    )
    print(
        f"\nA pass: timer_auto_resume, sweep_claim_warnings, sweep_claim_expiries, sweep_claim_reports and "
        f"timer_work_next_due with nothing due. server: their statements' EXPLAIN ANALYZE execution times, summed "
        f"(median of 7); client: wall time of the calls in Python, ORM included (median of {IDLE_RUNS}). Due-expiry "
        f"probe: the expiry claim's SELECT … FOR UPDATE SKIP LOCKED, EXPLAIN ANALYZE (index: "
        f"{rows[-1]['idle']['probe_index']}). Engine tick: the real Sweeper.run idle, its bots.db.call time per tick "
        f"(thread hop and pool checkout included). BoostMon: {BOOSTMON_SQL}, every row fetched "
        f"(median of 5, 3 at 1M). 'After the engine runs': {2 * BURST + SPREAD + THROTTLED:,} timers just expired, not yet vacuumed."
    )

    b, a, t, s = engine["burst"], engine["apart"], engine["throttled"], engine["spread"]
    never = f"bucket never binds ({UNBOUND_BUCKET:,}/s)"
    print_table(
        f"Expiry throughput, timers due at once ({largest} timers in the table, Sweeper + DiscordRest against the loopback fake Discord)",
        [
            "fake Discord",
            "its rate-limit headers",
            "due",
            "expired",
            "seconds",
            "expiries/s",
            "role DELETEs applied",
            "stored as removed",
            "still holding the role",
            "notices posted",
            "failures",
        ],
        [
            [
                where,
                headers,
                f"{r['count']:,}",
                f"{r['expired']:,}",
                f"{r['seconds']:.2f}",
                f"{r['expired'] / r['seconds']:,.0f}",
                f"{r['deletes']:,}",
                f"{r['stored']:,}",
                f"{r['holding']:,}",
                f"{r['notices']:,}",
                str(r["failures"]),
            ]
            for where, headers, r in (
                ("in this process", never, b),
                ("own process (bench/sweep_fake.py)", never, a),
                ("in this process", "default (50 per 1 s, Discord-like)", t),
            )
        ],
    )
    print_table(
        f"Expiry latency after due, {s['count']:,} timers due at spread times over {SPREAD_SECONDS:.0f} s (bucket never binds)",
        ["measured at", "expired", "p50 ms", "p99 ms", "max ms"],
        [
            ["role removed (Sweeper figures.latencies_ms)", f"{s['expired']:,}", *map(fmt_ms, s["removed"])],
            ["outcome stored (ended_at − expires_at)", f"{s['stored']:,}", *map(fmt_ms, s["recorded"])],
        ],
    )
    print_table(
        f"Worker peak memory: bots.tasks.sweep_timers for {MEMORY_SWEEP_SECONDS} s with nothing due, vs a process loading every active timer",
        ["timers", "worker peak MiB", "BoostMon-pattern process peak MiB", "rows it loaded"],
        [
            [label(n), f"{m['worker_kib'] / 1024:.0f}", f"{m['naive_kib'] / 1024:.0f}", f"{m['naive_rows']:,}"]
            for n, m in memory.items()
        ],
    )

    # --- goals -------------------------------------------------------------------------------------------
    ok = lambda cond: "✔" if cond else "✘"  # noqa: E731
    big = rows[-1]
    server = [r["idle"]["server_ms"] for r in rows]
    client = [r["idle"]["db_ms"] for r in rows]
    rate = b["expired"] / b["seconds"]
    print("\nGoals:")
    if is_postgres():
        print(
            f"- nothing-due sweep ≤ 1 ms of database time: {fmt_ms(max(server))} ms at worst (server) {ok(max(server) <= 1)}; "
            f"client wall time with the ORM {fmt_ms(min(client))}–{fmt_ms(max(client))} ms {ok(max(client) <= 1)}"
        )
        print(
            f"- flat from {label(sizes[0])} to {largest}: server {fmt_ms(server[0])} → {fmt_ms(server[-1])} ms, "
            f"client {fmt_ms(client[0])} → {fmt_ms(client[-1])} ms {ok(server[-1] <= max(2 * server[0], server[0] + 0.2))}"
        )
        ratio = big["boost"]["server_ms"] / big["idle"]["server_ms"]
        print(
            f"- ≥ 1,000x less than the BoostMon pattern at {largest}: {ratio:,.0f}x server, "
            f"{big['boost']['ms'] / big['idle']['db_ms']:,.0f}x client {ok(ratio >= 1000 and big['boost']['ms'] / big['idle']['db_ms'] >= 1000)}"
        )
    apart_rate = a["expired"] / a["seconds"]
    print(
        f"- ≥ 2,000 expiries/s: {rate:,.0f}/s with the fake in this process {ok(rate >= 2000 and b['expired'] == BURST)}, "
        f"{apart_rate:,.0f}/s with the fake in its own process {ok(apart_rate >= 2000 and a['expired'] == BURST)} "
        f"(against the fake's default rate-limit headers: {t['expired'] / t['seconds']:,.0f}/s)"
    )
    print(f"- p99 latency after due ≤ 2 s: {fmt_ms(s['removed'][1])} ms {ok(s['removed'][1] <= 2000 and s['expired'] == SPREAD)}")
    if len(memory) == 2:
        small_kib, large_kib = (m["worker_kib"] for m in memory.values())
        print(
            f"- worker memory flat from {label(sizes[0])} to {largest}: {small_kib / 1024:.0f} → {large_kib / 1024:.0f} MiB "
            f"{ok(large_kib <= small_kib * 1.1 + 2048)}"
        )
    print(
        f"\nwall time {wall:.0f} s (seeding {sum(seeding.values()):.0f} s); load average at the start "
        f"{load_start[0]:.2f}, at the end {os.getloadavg()[0]:.2f} (1 min)"
    )


if __name__ == "__main__":
    main()
