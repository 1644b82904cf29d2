"""The read replica on loopback: replication delay, reads through it, and the fallback drill.

    .venv/bin/python bench/replica.py [--requests 300] [--ports 5460-5469]

Makes a primary and its streaming replica with ``deploy/replica.sh pair`` in a temp directory
(two free ports of ``--ports``), migrates and seeds the primary (10,000 cookie counts, 200
commands), then measures:

1. replication delay: 200 single-row commits on the primary, each timed until the replica has
   replayed its WAL position (polled every 0.5 ms);
2. reads through the web: gunicorn (2 workers) with DATABASE_REPLICA_URL and, as the baseline
   in the same run, without it: ``--requests`` API leaderboard and cookie-count pages, p50/p95,
   and which server ran the reads (pg_stat_statements on each);
3. the drill, with the default REPLICA_CHECK_INTERVAL_S (5 s) and REPLICA_MAX_LAG_S (30 s): a
   read every 50 ms while the replica is stopped and started again: failed reads, the slowest
   read, how long until /health/ready warns and until reads are back on the replica.

Everything it starts is stopped and removed at the end; the shared server on 5432 is not used.
"""

from __future__ import annotations

import argparse
import os
import shutil
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import psycopg
import requests
from _table import print_table

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from tests.scale.conftest import ReplicaPair, Web, _port_free, manage, product_env  # noqa: E402

GUILD = 100000000000000001
SEED = f"""
from django.contrib.auth.models import User
from commands.models import CookieBalance, CustomCommand
from ops.api_tokens import api_token_create
user = User.objects.create_superuser("bench", password="bench-pw-123")
CookieBalance.objects.bulk_create(CookieBalance(guild_id={GUILD}, member_id=10_000 + i, balance=i % 997) for i in range(10_000))
CustomCommand.objects.bulk_create(CustomCommand(guild_id={GUILD}, name=f"cmd{{i}}", template="hi") for i in range(200))
print(api_token_create(user=user, name="bench", created_by=None)[1])
"""


def pct(values: list[float], q: float) -> float:
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, int(q * len(ordered)))]


def replication_delay(pair: ReplicaPair, writes: int = 200) -> list[float]:
    delays = []
    with (
        psycopg.connect(
            host="127.0.0.1", port=pair.primary_port, user="postgres", dbname="guildhall", autocommit=True
        ) as primary,
        psycopg.connect(
            host="127.0.0.1", port=pair.replica_port, user="postgres", dbname="guildhall", autocommit=True
        ) as replica,
    ):
        for i in range(writes):
            started = time.perf_counter()
            primary.execute(
                "UPDATE commands_cookiebalance SET balance = balance + 1 WHERE guild_id = %s AND member_id = %s",
                [GUILD, 10_000 + i],
            )
            lsn = primary.execute("SELECT pg_current_wal_lsn()::text").fetchone()[0]
            while not replica.execute("SELECT pg_last_wal_replay_lsn() >= %s::pg_lsn", [lsn]).fetchone()[0]:
                time.sleep(0.0005)
            delays.append((time.perf_counter() - started) * 1000)
    return delays


def timed_reads(web: Web, key: str, count: int) -> list[float]:
    session = requests.Session()
    session.headers["Authorization"] = f"Bearer {key}"
    paths = [f"/api/v1/guilds/{GUILD}/cookies/leaderboard?page=3", f"/api/v1/guilds/{GUILD}/cookies/balances?limit=100"]
    for path in paths:
        session.get(web.url + path, timeout=10).raise_for_status()  # warm-up
    times = []
    for i in range(count):
        started = time.perf_counter()
        session.get(web.url + paths[i % 2], timeout=10).raise_for_status()
        times.append((time.perf_counter() - started) * 1000)
    return times


def replica_status(web: Web) -> str:
    return requests.get(web.url + "/health/ready", timeout=10).json()["checks"]["replica:lag"][0]["status"]


def drill(pair: ReplicaPair, web: Web, key: str) -> list[list[str]]:
    session = requests.Session()
    session.headers["Authorization"] = f"Bearer {key}"
    url = f"{web.url}/api/v1/guilds/{GUILD}/cookies/balances?limit=50"
    rows = []
    for phase, action, want in (("replica stopped", "down", "warn"), ("replica started", "up", "pass")):
        failed, slowest = 0, 0.0
        started = time.monotonic()
        pair.script(action)
        reported = None
        while time.monotonic() - started < 15:
            t0 = time.perf_counter()
            answer = session.get(url, timeout=10)
            slowest = max(slowest, (time.perf_counter() - t0) * 1000)
            failed += answer.status_code != 200
            if reported is None and replica_status(web) == want:
                reported = time.monotonic() - started
                break
            time.sleep(0.05)
        rows.append([phase, str(failed), f"{slowest:.0f}", "never" if reported is None else f"{reported:.1f}"])
    return rows


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--requests", type=int, default=300)
    parser.add_argument("--ports", default="5460-5469")
    args = parser.parse_args()
    first, _, last = args.ports.partition("-")
    ports = [p for p in range(int(first), int(last or first) + 1) if _port_free(p)][:2]
    if len(ports) < 2:
        sys.exit(f"two free ports are needed in {args.ports}")
    directory = tempfile.mkdtemp(prefix="guildhall-replica-bench-", dir="/tmp")
    os.chmod(directory, 0o755)
    script = str(ROOT / "deploy" / "replica.sh")
    pair = ReplicaPair(directory, ports[0], ports[1])
    webs: list[Web] = []
    try:
        subprocess.run([script, "pair", "--dir", directory, "--primary-port", str(ports[0]), "--replica-port", str(ports[1]),
                        "--database", "guildhall", "--preload", "pg_stat_statements"], check=True, capture_output=True)  # fmt: skip
        pair.sql("primary", "CREATE EXTENSION pg_stat_statements")
        base = Path(directory) / "product"
        env = product_env(pair, str(base / "data"))
        env.pop("DATABASE_REPLICA_URL")
        manage(env, "migrate", "--noinput", "--verbosity", "0")
        manage(env, "collectstatic", "--noinput", "--verbosity", "0")
        key = manage(env, code=SEED).strip().splitlines()[-1]
        pair.sql("primary", "ANALYZE")
        pair.caught_up()

        delays = replication_delay(pair)
        print_table(
            "Replication delay on loopback (commit on the primary until replayed on the replica)",
            ["writes", "p50 ms", "p95 ms", "max ms"],
            [[str(len(delays)), f"{pct(delays, 0.5):.2f}", f"{pct(delays, 0.95):.2f}", f"{max(delays):.2f}"]],
        )

        rows = []
        for label, extra in (("primary only (baseline)", {"DATABASE_REPLICA_URL": ""}), ("with the replica", {})):
            web_env = product_env(pair, str(base / "data"), WEB_CONCURRENCY="2", **extra)
            web = Web(web_env, base / f"web-{len(webs)}.log", workers=2)
            webs.append(web)
            if not extra:
                deadline = time.monotonic() + 10
                while replica_status(web) != "pass" and time.monotonic() < deadline:
                    time.sleep(0.2)
            pair.statements_reset()
            times = timed_reads(web, key, args.requests)
            on_replica = pair.calls("replica", 'SELECT%FROM "commands_cookiebalance"%')
            on_primary = pair.calls("primary", 'SELECT%FROM "commands_cookiebalance"%')
            rows.append(
                [
                    label,
                    str(len(times)),
                    f"{statistics.median(times):.1f}",
                    f"{pct(times, 0.95):.1f}",
                    str(on_primary),
                    str(on_replica),
                ]
            )
            if extra:
                web.stop()
        print_table(
            f"API reads through gunicorn, 2 workers ({args.requests} requests: leaderboard page 3, 100 cookie counts)",
            ["setup", "requests", "p50 ms", "p95 ms", "balance reads on primary", "on replica"],
            rows,
        )
        print_table(
            "Drill: the replica stopped, then started (a read every 50 ms; REPLICA_CHECK_INTERVAL_S=5, REPLICA_MAX_LAG_S=30)",
            ["phase", "failed reads", "slowest read ms", "/health/ready says it after s"],
            drill(pair, webs[-1], key),
        )
        print(f"\nmachine: {os.cpu_count()} cores, Python {sys.version.split()[0]}, PostgreSQL 15 pair on loopback")
    finally:
        for web in webs:
            web.stop()
        subprocess.run([script, "stop", "--dir", directory], capture_output=True)
        shutil.rmtree(directory, ignore_errors=True)  # the product's data and logs


if __name__ == "__main__":
    main()
