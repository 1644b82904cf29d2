"""The admin dashboard at 1M timers and 1M cookie-ledger rows: list pages, health endpoints, backups.

    DATABASE_URL=postgres://postgres@127.0.0.1:5432/guildhall_dashbench .venv/bin/python bench/dashboard.py

The script creates the database (``createdb``) if it is missing and migrates it. It seeds,
with ``INSERT … SELECT generate_series``, 1,000,000 ``timers_timedrole`` rows over 50 guilds
(20 % active, 10 % paused, 50 % expired, 20 % cleared, expiries spread over weeks), 1,000,000
``commands_cookieledger`` rows, 100,000 ``commands_cookiebalance`` rows and 10,000 custom
commands, then ANALYZEs; a rerun finds the rows there and skips the seeding. The database is
left in place for reruns.

Goals (issue): admin list pages p95 <= 300 ms; /health p95 <= 20 ms (/health/ready reported);
the product's backup (``ops.backups.services.backup_create``) <= 1.3x a raw ``pg_dump -Fc`` of
the same database, measured in the same run.

Pages are requested in process with ``django.test.Client`` as a superuser (``force_login``):
a warm-up request, then ``--repeat`` (30) timed requests each; /health and /health/ready 200
each. Backups: median of 2 runs each, written to a temporary BACKUP_DIR that is removed after.
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

import _setup  # noqa: F401  (Django set-up)
from _setup import machine, print_table
from django.conf import settings
from django.core.management import call_command
from django.db import connection
from django.test import Client

DB_NAME = "guildhall_dashbench"
N_TIMERS = 1_000_000
N_LEDGER = 1_000_000
N_MEMBERS = 100_000  # cookie balances
N_COMMANDS = 10_000
N_GUILDS = 50
GUILD0 = 900_000_000_000_000_000  # guild ids GUILD0 .. GUILD0 + 49
MEMBER0 = 800_000_000_000_000_000
ROLE0 = 700_000_000_000_000_000
CHANNEL0 = 600_000_000_000_000_000
LIST_GOAL_MS = 300.0
HEALTH_GOAL_MS = 20.0
BACKUP_GOAL = 1.3


# --- database ------------------------------------------------------------------------
def ensure_database() -> None:
    db = settings.DATABASES["default"]
    if not db["ENGINE"].endswith("postgresql"):
        sys.exit(
            f"bench/dashboard.py measures PostgreSQL, but DATABASE_URL gives {db['ENGINE']}: run it with\n"
            f"  DATABASE_URL=postgres://postgres@127.0.0.1:5432/{DB_NAME} .venv/bin/python bench/dashboard.py"
        )
    args = ["-h", str(db.get("HOST") or "127.0.0.1"), "-p", str(db.get("PORT") or 5432), "-U", str(db.get("USER") or "postgres")]
    env = {**os.environ, **({"PGPASSWORD": str(db["PASSWORD"])} if db.get("PASSWORD") else {})}
    exists = subprocess.run(
        ["psql", *args, "-d", "postgres", "-tAc", f"SELECT 1 FROM pg_database WHERE datname = '{db['NAME']}'"],
        capture_output=True,
        text=True,
        env=env,
        check=True,
    ).stdout.strip()
    if exists != "1":
        print(f"creating database {db['NAME']}", flush=True)
        subprocess.run(["createdb", *args, db["NAME"]], env=env, check=True)
    call_command("migrate", verbosity=0, interactive=False)


def count(table: str) -> int:
    with connection.cursor() as cursor:
        cursor.execute(f"SELECT COUNT(*) FROM {table}")
        return cursor.fetchone()[0]


TIMERS_SQL = """
INSERT INTO timers_timedrole (guild_id, member_id, role_id, state, expires_at, paused_remaining, pause_until, pause_kind,
    warn_channel_id, warnings_sent, next_warn_at, issued_by_id, created_at, updated_at, ended_at, outcome,
    outcome_detail, attempts, lease_owner, lease_until)
SELECT %(guild0)s + i %% 50, %(member0)s + i, %(role0)s + (i / 50) %% 20, s.state,
    CASE s.state WHEN 'active' THEN now() + ((i * 7919) %% 2592000) * interval '1 second'
                 WHEN 'paused' THEN NULL
                 ELSE c.created + interval '1 day' + ((i * 7919) %% 604800) * interval '1 second' END,
    CASE WHEN s.state = 'paused' THEN ((i * 31) %% 604800) * interval '1 second' END,
    CASE WHEN s.state = 'paused' AND i %% 2 = 0 THEN now() + ((i * 13) %% 172800) * interval '1 second' END,
    CASE WHEN s.state = 'paused' THEN 'member' ELSE '' END,
    %(channel0)s + i %% 50,
    CASE WHEN s.state = 'active' THEN '[]'::jsonb ELSE '[60, 10, 1]'::jsonb END,
    CASE WHEN s.state = 'active' THEN now() + ((i * 7919) %% 2592000) * interval '1 second' - interval '60 minutes' END,
    %(member0)s + (i * 17) %% 1000, c.created, c.created,
    CASE WHEN s.state IN ('expired', 'cleared') THEN c.created + interval '1 day' END,
    CASE WHEN s.state = 'expired' THEN 'removed' ELSE '' END,
    '', 0, '', NULL
FROM generate_series(1::bigint, %(n)s::bigint) AS i,
     LATERAL (SELECT CASE WHEN i %% 10 < 2 THEN 'active' WHEN i %% 10 = 2 THEN 'paused'
                          WHEN i %% 10 < 8 THEN 'expired' ELSE 'cleared' END AS state) AS s,
     LATERAL (SELECT now() - (%(n)s - i) * interval '30 seconds' AS created) AS c
"""

LEDGER_SQL = """
INSERT INTO commands_cookieledger (guild_id, giver_id, receiver_id, delta, reason, message_id, created_at)
SELECT %(guild0)s + m %% 50,
    CASE WHEN i %% 20 = 0 THEN NULL ELSE %(member0)s + ((i * 7919) %% 2000) * 50 + m %% 50 END,
    %(member0)s + m,
    CASE WHEN i %% 20 = 0 THEN 100 WHEN i %% 7 = 0 THEN -1 ELSE 1 END,
    CASE WHEN i %% 20 = 0 THEN 'admin_set' WHEN i %% 7 = 0 THEN 'take' ELSE 'give' END,
    CASE WHEN i %% 20 = 0 THEN NULL ELSE 10000000000000000 + i END,
    now() - (%(n)s - i) * interval '30 seconds'
FROM generate_series(1::bigint, %(n)s::bigint) AS i, LATERAL (SELECT (i * 48271) %% %(members)s AS m) AS x
"""

BALANCE_SQL = """
INSERT INTO commands_cookiebalance (guild_id, member_id, balance, updated_at)
SELECT %(guild0)s + m %% 50, %(member0)s + m, (m * 37) %% 500, now() - (m %% 1000) * interval '1 minute'
FROM generate_series(0::bigint, %(members)s::bigint - 1) AS m
"""

COMMANDS_SQL = """
INSERT INTO commands_customcommand (guild_id, name, template, author_id, editor_ids, created_at, edited_at, usage_count,
    last_used_at, cooldown_seconds, cooldown_scope, enabled, note)
SELECT %(guild0)s + i %% 50, 'cmd' || (i / 50), 'Hello {user}, you said {args} (#' || i || ')', %(member0)s + i %% 1000,
    '[]'::jsonb, now() - i * interval '1 minute', NULL, (i * 7919) %% 100000, now() - i * interval '1 second',
    0, 'member', i %% 25 <> 0, ''
FROM generate_series(0::bigint, %(commands)s::bigint - 1) AS i
"""

SEEDS = [  # (table, wanted rows, SQL; tables whose rows depend on it are truncated with it)
    ("timers_timedrole", N_TIMERS, TIMERS_SQL),
    ("commands_cookieledger", N_LEDGER, LEDGER_SQL),
    ("commands_cookiebalance", N_MEMBERS, BALANCE_SQL),
    ("commands_customcommand", N_COMMANDS, COMMANDS_SQL),
]


def seed() -> list[list[str]]:
    params = {
        "guild0": GUILD0,
        "member0": MEMBER0,
        "role0": ROLE0,
        "channel0": CHANNEL0,
        "n": N_TIMERS,
        "members": N_MEMBERS,
        "commands": N_COMMANDS,
    }
    rows, changed = [], False
    for table, wanted, sql in SEEDS:
        have = count(table)
        if have == wanted:
            rows.append([table, f"{have:,}", "present (skipped)"])
            continue
        started = time.perf_counter()
        with connection.cursor() as cursor:
            cursor.execute(f"TRUNCATE {table} RESTART IDENTITY CASCADE")
            cursor.execute(sql, {**params, "n": wanted})
        changed = True
        rows.append([table, f"{wanted:,}", f"seeded in {time.perf_counter() - started:.1f} s"])
        print(f"  {table}: {rows[-1][2]}", flush=True)
    if changed:
        with connection.cursor() as cursor:
            cursor.execute("VACUUM ANALYZE")  # statistics for the planner and the paginator's estimates
    return rows


# --- requests --------------------------------------------------------------------------
def pct(samples: list[float], p: float) -> float:
    ordered = sorted(samples)
    return ordered[min(len(ordered) - 1, max(0, round(p / 100 * len(ordered) + 0.5) - 1))]


def timed(client: Client, url: str, repeat: int, warmup: int = 1) -> tuple[list[float], int, int]:
    """Milliseconds per request; the status code; the response size."""
    for _ in range(warmup):
        response = client.get(url)
    samples = []
    for _ in range(repeat):
        started = time.perf_counter()
        response = client.get(url)
        samples.append((time.perf_counter() - started) * 1000)
        if response.status_code != 200:
            raise SystemExit(f"{url} answered {response.status_code}")
    return samples, response.status_code, len(response.content)


def admin_pages(repeat: int) -> tuple[list[list[str]], dict[str, float]]:
    from django.contrib.auth import get_user_model

    from timers.models import TimedRole

    user, _ = get_user_model().objects.get_or_create(
        username="dashbench", defaults={"is_staff": True, "is_superuser": True, "email": "dashbench@example.invalid"}
    )
    client = Client()
    client.force_login(user)
    guild = GUILD0 + 7
    timer = TimedRole.objects.filter(guild_id=guild).order_by("-pk").values_list("pk", flat=True).first()
    pages = [
        ("timers list", "/admin/timers/timedrole/"),
        ("timers list, page 50", "/admin/timers/timedrole/?p=50"),
        ("timers, search guild", f"/admin/timers/timedrole/?q={guild}"),
        ("timers, search guild + state:active", f"/admin/timers/timedrole/?q={guild}+state:active"),
        ("timer change page", f"/admin/timers/timedrole/{timer}/change/"),
        ("cookie ledger list", "/admin/commands/cookieledger/"),
        ("cookie ledger, search guild", f"/admin/commands/cookieledger/?q={guild}"),
        ("cookie balances list", "/admin/commands/cookiebalance/"),
        ("cookie balances, search guild", f"/admin/commands/cookiebalance/?q={guild}"),
        ("custom commands list", "/admin/commands/customcommand/"),
    ]
    rows, p95s = [], {}
    for label, url in pages:
        samples, status, size = timed(client, url, repeat)
        p95s[label] = pct(samples, 95)
        rows.append(
            [
                label,
                url,
                str(status),
                f"{size / 1024:.0f} KiB",
                f"{statistics.median(samples):.1f}",
                f"{pct(samples, 95):.1f}",
                f"{max(samples):.1f}",
                "yes" if pct(samples, 95) <= LIST_GOAL_MS else "**no**",
            ]
        )
        print(f"  {label}: p50 {statistics.median(samples):.1f} ms, p95 {pct(samples, 95):.1f} ms", flush=True)
    return rows, p95s


def health(repeat: int) -> tuple[list[list[str]], dict[str, float]]:
    client = Client()
    rows, p95s = [], {}
    for url in ("/health", "/health/ready"):
        samples = []
        for i in range(repeat + 5):
            started = time.perf_counter()
            response = client.get(url)
            elapsed = (time.perf_counter() - started) * 1000
            if response.status_code not in (200, 503):
                raise SystemExit(f"{url} answered {response.status_code}")
            if i >= 5:  # warm-up
                samples.append(elapsed)
        status = response.json().get("status")
        p95s[url] = pct(samples, 95)
        goal = ("yes" if pct(samples, 95) <= HEALTH_GOAL_MS else "**no**") if url == "/health" else "(no goal)"
        rows.append(
            [
                url,
                f"{response.status_code} {status}",
                str(repeat),
                f"{statistics.median(samples):.2f}",
                f"{pct(samples, 95):.2f}",
                f"{max(samples):.2f}",
                goal,
            ]
        )
    return rows, p95s


# --- backups ---------------------------------------------------------------------------
def raw_pg_dump(dest: Path) -> float:
    db = settings.DATABASES["default"]
    env = {**os.environ, **({"PGPASSWORD": str(db["PASSWORD"])} if db.get("PASSWORD") else {})}
    args = [
        "pg_dump",
        "-Fc",
        "-h",
        str(db.get("HOST") or "127.0.0.1"),
        "-p",
        str(db.get("PORT") or 5432),
        "-U",
        str(db.get("USER") or "postgres"),
        "-f",
        str(dest),
        db["NAME"],
    ]
    started = time.perf_counter()
    subprocess.run(args, env=env, check=True)
    return time.perf_counter() - started


class StepTimer:
    """Times the steps of ``backup_create`` by wrapping the functions it calls (restored after)."""

    def __init__(self) -> None:
        import ops.backups.engines.postgresql as engine
        import ops.backups.services as services

        self.totals: dict[str, list[float]] = {}
        self.targets = [
            (engine, "dump_create", "pg_dump -Fc + row counts (engine.dump_create)"),
            (engine, "dump_migrations", "read migrations back (pg_restore --table)"),
            (services, "_compress", "gzip at the engine's level + fsync (_compress)"),
            (services, "file_sha256", "sha256 of the .gz (file_sha256)"),
        ]
        self.saved = []

    def __enter__(self):
        for module, name, label in self.targets:
            original = getattr(module, name)
            self.saved.append((module, name, original))
            setattr(module, name, self._wrap(original, label))
        return self

    def __exit__(self, *exc):
        for module, name, original in self.saved:
            setattr(module, name, original)
        self.saved.clear()

    def _wrap(self, fn, label):
        def wrapped(*args, **kwargs):
            started = time.perf_counter()
            try:
                return fn(*args, **kwargs)
            finally:
                self.totals.setdefault(label, []).append(time.perf_counter() - started)

        return wrapped


def backups(runs: int) -> tuple[list[list[str]], list[list[str]], float]:
    from ops.backups.services import backup_create, backup_delete

    folder = Path(tempfile.mkdtemp(prefix="guildhall-dashbench-backups-"))
    settings.BACKUP_DIR = folder
    product, raw, sizes = [], [], {}
    steps = StepTimer()
    try:
        for _ in range(runs):  # interleaved, so drift in the machine hits both alike
            dest = folder / "raw.dump"
            raw.append(raw_pg_dump(dest))
            sizes["raw"] = dest.stat().st_size
            dest.unlink()
            with steps:
                started = time.perf_counter()
                info = backup_create(kind="manual", origin="bench/dashboard.py")
                product.append(time.perf_counter() - started)
            sizes["product"] = info.size
            backup_delete(name=info.name)
            time.sleep(1.1)  # backup names are stamped to the second
    finally:
        shutil.rmtree(folder, ignore_errors=True)
    ratio = statistics.median(product) / statistics.median(raw)
    rows = [
        [
            "raw pg_dump -Fc",
            ", ".join(f"{t:.2f}" for t in raw),
            f"{statistics.median(raw):.2f}",
            f"{sizes['raw'] / 2**20:.1f} MiB",
            "1.000x",
            "",
        ],
        [
            "backup_create(kind='manual')",
            ", ".join(f"{t:.2f}" for t in product),
            f"{statistics.median(product):.2f}",
            f"{sizes['product'] / 2**20:.1f} MiB",
            f"{ratio:.3f}x",
            "yes" if ratio <= BACKUP_GOAL else "**no**",
        ],
    ]
    step_rows = [[label, f"{statistics.median(times):.2f}"] for label, times in steps.totals.items()]
    accounted = sum(statistics.median(times) for times in steps.totals.values())
    step_rows.append(["rest (sidecar, rename, backup_get)", f"{statistics.median(product) - accounted:.2f}"])
    return rows, step_rows, ratio


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--repeat", type=int, default=30, help="timed requests per admin page")
    parser.add_argument("--health-repeat", type=int, default=200)
    parser.add_argument("--backup-runs", type=int, default=2)
    args = parser.parse_args()
    wall = time.perf_counter()
    ensure_database()
    if "testserver" not in settings.ALLOWED_HOSTS:
        settings.ALLOWED_HOSTS = [*settings.ALLOWED_HOSTS, "testserver"]  # django.test.Client's host

    print("seeding", flush=True)
    seeded = seed()
    print("admin pages", flush=True)
    page_rows, page_p95 = admin_pages(args.repeat)
    print("health", flush=True)
    health_rows, health_p95 = health(args.health_repeat)
    print("backups", flush=True)
    backup_rows, step_rows, ratio = backups(args.backup_runs)

    print(f"\nMachine: {machine()}, PostgreSQL {connection.pg_version // 10000}, DEBUG={settings.DEBUG}")
    print(f"Command: DATABASE_URL=postgres://postgres@127.0.0.1:5432/{DB_NAME} .venv/bin/python bench/dashboard.py")
    print_table("Data", ["table", "rows", "this run"], seeded)
    print_table(
        f"Admin pages (superuser, in-process test client; {args.repeat} requests after a warm-up; goal p95 <= {LIST_GOAL_MS:.0f} ms)",
        ["page", "url", "status", "size", "p50 ms", "p95 ms", "max ms", "goal met"],
        page_rows,
    )
    print_table(
        f"Health endpoints ({args.health_repeat} requests each; goal /health p95 <= {HEALTH_GOAL_MS:.0f} ms)",
        ["endpoint", "answer", "requests", "p50 ms", "p95 ms", "max ms", "goal met"],
        health_rows,
    )
    print_table(
        f"Backup vs raw pg_dump -Fc, same database, same run (median of {args.backup_runs}; goal <= {BACKUP_GOAL}x)",
        ["what", "runs s", "median s", "file", "ratio", "goal met"],
        backup_rows,
    )
    print_table("Where backup_create's time goes (median s per step)", ["step", "s"], step_rows)
    worst = max(page_p95, key=page_p95.get)
    print(
        f"\nGoals: admin pages p95 <= {LIST_GOAL_MS:.0f} ms: {'met' if page_p95[worst] <= LIST_GOAL_MS else 'MISSED'} "
        f"(slowest {worst}, {page_p95[worst]:.1f} ms); /health p95 <= {HEALTH_GOAL_MS:.0f} ms: "
        f"{'met' if health_p95['/health'] <= HEALTH_GOAL_MS else 'MISSED'} ({health_p95['/health']:.2f} ms); "
        f"backup <= {BACKUP_GOAL}x pg_dump: {'met' if ratio <= BACKUP_GOAL else 'MISSED'} ({ratio:.3f}x)"
    )
    print(f"Wall time: {time.perf_counter() - wall:.0f} s")


if __name__ == "__main__":
    main()
