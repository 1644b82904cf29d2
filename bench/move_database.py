"""``move_database`` SQLite → PostgreSQL against ``dumpdata | loaddata`` and pgloader, same data, one run.

    apt-get install -y pgloader          # once (Debian's 3.6.9); the bench runs without it and says so
    .venv/bin/python bench/move_database.py [--timers 1000000] [--dir /tmp/ghd_bench_move]

The source is a SQLite file, migrated, then filled with fast raw inserts (``INSERT …
SELECT`` over a recursive counter): ``--timers`` timed roles (70% active, 10% paused,
20% expired), as many ledger rows, a tenth as many balances, a hundredth as many
commands. Each contender copies it into a fresh PostgreSQL database at 127.0.0.1:5432
(``ghd_bench_move_*``, dropped at the end):

- ``manage.py move_database --to …``: the whole job (migrate, copy, sequences, verify).
- ``manage.py dumpdata <the four models> | manage.py loaddata --format=json -`` on a slice
  (``--slice`` of each table, a separate SQLite file) into a migrated database,
  extrapolated linearly to the full row count.
- pgloader, data only, the same four tables into a database migrated by Django first
  (it checks nothing and converts nothing: the paused timers' remainders land as seconds).

Peak RSS is each child's own (``os.wait4``). Goals: ≥ 10x ``dumpdata | loaddata``, within
1.5x of pgloader, ≤ 250 MB RSS for ``move_database``.
"""

from __future__ import annotations

import argparse
import json
import os
import shutil
import sqlite3
import subprocess
import sys
import time
from pathlib import Path

ROOT = Path(os.path.abspath(__file__)).parent.parent  # the checkout it runs from
PYTHON = sys.executable
PG = "postgres://postgres@127.0.0.1:5432"
TABLES = ("timers_timedrole", "commands_cookieledger", "commands_cookiebalance", "commands_customcommand")
MODELS = ("timers.TimedRole", "commands.CookieLedger", "commands.CookieBalance", "commands.CustomCommand")
GUILD = 870_000_000_000_000_000
GOAL_VS_DUMP, GOAL_VS_PGLOADER, GOAL_RSS_MB = 10.0, 1.5, 250.0

# Per table: SQL for the columns the bench sets ("x" counts 1..n); other columns take their model default.
STAMP = "strftime('%Y-%m-%d %H:%M:%S', 1764547200 + {s}, 'unixepoch') || printf('.%06d', ((x * 7919) % 999999) + 1)"
COLUMNS = {
    "timers_timedrole": {
        "guild_id": f"{GUILD} + x % 1000",
        "member_id": f"{GUILD + 1_000_000} + x",
        "role_id": f"{GUILD + 2_000_000} + x % 20",
        "state": "CASE WHEN x % 10 < 7 THEN 'active' WHEN x % 10 = 7 THEN 'paused' ELSE 'expired' END",
        "expires_at": f"CASE WHEN x % 10 = 7 THEN NULL ELSE {STAMP.format(s='x * 60')} END",
        "paused_remaining": "CASE WHEN x % 10 = 7 THEN 3600000000 + x ELSE NULL END",
        "pause_kind": "CASE WHEN x % 10 = 7 THEN 'member' ELSE '' END",
        "warn_channel_id": f"{GUILD + 3_000_000} + x % 1000",
        "warnings_sent": "CASE WHEN x % 3 = 0 THEN '[60, 10]' ELSE '[]' END",
        "next_warn_at": f"CASE WHEN x % 10 < 7 THEN {STAMP.format(s='x * 60 - 600')} ELSE NULL END",
        "issued_by_id": f"{GUILD + 4_000_000} + x % 50",
        "created_at": STAMP.format(s="x"),
        "updated_at": STAMP.format(s="x + 5"),
        "ended_at": f"CASE WHEN x % 10 > 7 THEN {STAMP.format(s='x * 60')} ELSE NULL END",
        "outcome": "CASE WHEN x % 10 > 7 THEN 'removed' ELSE '' END",
    },
    "commands_cookieledger": {
        "guild_id": f"{GUILD} + x % 100",
        "giver_id": f"{GUILD + 1_000_000} + x % 5000",
        "receiver_id": f"{GUILD + 1_000_000} + (x * 31) % 100000",
        "delta": "CASE WHEN x % 9 = 0 THEN -1 ELSE 1 END",
        "reason": "CASE WHEN x % 9 = 0 THEN 'take' ELSE 'give' END",
        "message_id": f"{GUILD + 9_000_000} + x",
        "created_at": STAMP.format(s="x * 3"),
    },
    "commands_cookiebalance": {
        "guild_id": f"{GUILD} + x % 100",
        "member_id": f"{GUILD + 1_000_000} + x",
        "balance": "x % 500 - 20",
        "updated_at": STAMP.format(s="x"),
    },
    "commands_customcommand": {
        "guild_id": f"{GUILD} + x % 100",
        "name": "'cmd' || x",
        "template": "'Hello {user}, this is command ' || x || ' ☕'",
        "author_id": f"{GUILD + 1_000_000} + x",
        "editor_ids": "'[' || x || ']'",
        "created_at": STAMP.format(s="x"),
        "usage_count": "x * 3",
        "cooldown_seconds": "x % 4 * 30",
    },
}


def run(args: list[str], env: dict[str, str], **kwargs) -> subprocess.CompletedProcess:
    return subprocess.run(args, cwd=ROOT, env=env, check=True, text=True, **kwargs)


def timed_child(args: list[str], env: dict[str, str], log: Path, shell: bool = False) -> tuple[float, float, int]:
    """Run a child to the end: (seconds, its own peak RSS in MB, exit status)."""
    started = time.perf_counter()
    with log.open("w") as out:
        child = subprocess.Popen(
            args if not shell else " ".join(args), cwd=ROOT, env=env, stdout=out, stderr=subprocess.STDOUT, shell=shell
        )
        _, status, usage = os.wait4(child.pid, 0)
    child.returncode = os.waitstatus_to_exitcode(status)
    return time.perf_counter() - started, usage.ru_maxrss / 1024, child.returncode


def admin_sql(sql: str) -> None:
    subprocess.run(["psql", "-h", "127.0.0.1", "-U", "postgres", "-qAtc", sql], check=True, capture_output=True)


def fresh_database(name: str) -> str:
    admin_sql(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')
    admin_sql(f'CREATE DATABASE "{name}"')
    return f"{PG}/{name}"


def env_for(url: str, work: Path) -> dict[str, str]:
    env = {k: v for k, v in os.environ.items() if k not in ("REDIS_URL", "DATABASE_URL")}
    return env | {
        "DATABASE_URL": url,
        "GUILDHALL_DATA_DIR": str(work / "data"),
        "SECRET_KEY": "bench-move",
        "LOG_LEVEL": "WARNING",
    }


def defaults_sql(table: str, env: dict[str, str]) -> dict[str, str]:
    """A literal for each column the bench doesn't set: the model field's default, as SQLite stores it."""
    code = (
        "import json, os, django; os.environ.setdefault('DJANGO_SETTINGS_MODULE', 'config.settings'); django.setup()\n"
        "from django.apps import apps; from django.db import connection\n"
        f"model = next(m for m in apps.get_models() if m._meta.db_table == {table!r})\n"
        "out = {}\n"
        "for f in model._meta.local_concrete_fields:\n"
        "    if f.primary_key: continue\n"
        "    out[f.column] = f.get_db_prep_save(f.get_default(), connection)\n"
        "print(json.dumps(out))\n"
    )
    values = json.loads(run([PYTHON, "-c", code], env, capture_output=True).stdout)

    def literal(v: object) -> str:
        if v is None:
            return "NULL"
        if isinstance(v, bool):
            return str(int(v))
        if isinstance(v, int | float):
            return str(v)
        return "'" + str(v).replace("'", "''") + "'"

    return {column: literal(v) for column, v in values.items()}


def build_source(path: Path, timers: int, work: Path) -> dict[str, int]:
    """A migrated SQLite file holding the bench's rows; returns the row count per table."""
    path.unlink(missing_ok=True)
    run([PYTHON, "manage.py", "migrate", "-v0"], env_for(f"sqlite:///{path}", work))
    sizes = {
        "timers_timedrole": timers,
        "commands_cookieledger": timers,
        "commands_cookiebalance": max(1, timers // 10),
        "commands_customcommand": max(1, timers // 100),
    }
    db = sqlite3.connect(path)
    db.execute("PRAGMA synchronous=OFF")
    for table, n in sizes.items():
        columns = defaults_sql(table, env_for(f"sqlite:///{path}", work)) | COLUMNS[table]
        names = ", ".join(f'"{c}"' for c in columns)
        db.execute(
            f"WITH RECURSIVE c(x) AS (SELECT 1 UNION ALL SELECT x + 1 FROM c WHERE x < {n}) "
            f"INSERT INTO {table} ({names}) SELECT {', '.join(columns.values())} FROM c"
        )
        db.commit()
    db.execute("PRAGMA wal_checkpoint(TRUNCATE)")
    db.close()
    return sizes


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--timers", type=int, default=1_000_000, help="timers (and ledger rows); balances /10, commands /100")
    parser.add_argument("--slice", type=float, default=0.02, help="the share of each table dumpdata | loaddata copies")
    parser.add_argument("--dir", default="/tmp/ghd_bench_move", help="working folder (SQLite files, logs)")
    args = parser.parse_args()
    work = Path(args.dir)
    shutil.rmtree(work, ignore_errors=True)
    (work / "data").mkdir(parents=True)
    wall = time.perf_counter()

    print(f"building the source: {args.timers:,} timers", flush=True)
    started = time.perf_counter()
    source = work / "source.sqlite3"
    sizes = build_source(source, args.timers, work)
    total = sum(sizes.values())
    print(f"  {total:,} rows in {time.perf_counter() - started:.0f} s, {source.stat().st_size / 1e6:.0f} MB", flush=True)

    rows, results = [], {}
    print("move_database", flush=True)
    target = fresh_database("ghd_bench_move_target")
    seconds, rss, status = timed_child(
        [PYTHON, "manage.py", "move_database", "--to", target], env_for(f"sqlite:///{source}", work), work / "move.log"
    )
    moved_ok = status == 0 and "every table matches" in (work / "move.log").read_text()
    results["move"] = seconds
    rows.append(
        [
            "move_database (migrate, copy, sequences, verify)",
            f"{total:,}",
            f"{seconds:.1f}",
            f"{total / seconds:,.0f}",
            f"{rss:.0f}",
            "verified" if moved_ok else f"FAILED ({status})",
        ]
    )

    print("dumpdata | loaddata (slice)", flush=True)
    piece = work / "slice.sqlite3"
    slice_sizes = build_source(piece, max(100, int(args.timers * args.slice)), work)
    slice_total = sum(slice_sizes.values())
    loaded = fresh_database("ghd_bench_move_loaddata")
    run([PYTHON, "manage.py", "migrate", "-v0"], env_for(loaded, work))
    env = env_for(f"sqlite:///{piece}", work)
    pipeline = [
        PYTHON,
        "manage.py",
        "dumpdata",
        *MODELS,
        "|",
        "env",
        f"DATABASE_URL={loaded}",
        PYTHON,
        "manage.py",
        "loaddata",
        "--format=json",
        "-",
    ]
    seconds, rss, status = timed_child(pipeline, env, work / "dumpdata.log", shell=True)
    extrapolated = seconds * total / slice_total
    results["dump"] = extrapolated
    rows.append(
        [
            f"dumpdata | loaddata ({slice_total:,} rows, x{total / slice_total:.0f})",
            f"{total:,}",
            f"{extrapolated:.1f} (measured {seconds:.1f})",
            f"{slice_total / seconds:,.0f}",
            f"{rss:.0f}",
            "ok" if status == 0 else f"FAILED ({status})",
        ]
    )

    if shutil.which("pgloader"):
        print("pgloader", flush=True)
        into = fresh_database("ghd_bench_move_pgloader")
        run([PYTHON, "manage.py", "migrate", "-v0"], env_for(into, work))
        names = ", ".join(f"'{t}'" for t in TABLES)
        (work / "load.pgl").write_text(
            f"LOAD DATABASE FROM sqlite://{source} INTO {into}\n"
            f" WITH data only, truncate, reset sequences, workers = 2, concurrency = 1\n"
            f" INCLUDING ONLY TABLE NAMES LIKE {names};\n"
        )
        seconds, rss, status = timed_child(["pgloader", str(work / "load.pgl")], os.environ.copy(), work / "pgloader.log")
        results["pgloader"] = seconds
        rows.append(
            [
                "pgloader (data only, 4 tables, no checks)",
                f"{total:,}",
                f"{seconds:.1f}",
                f"{total / seconds:,.0f}",
                f"{rss:.0f}",
                "ok" if status == 0 else f"FAILED ({status})",
            ]
        )
    else:
        rows.append(["pgloader", "-", "-", "-", "-", "not installed: apt-get install -y pgloader"])

    for name in ("ghd_bench_move_target", "ghd_bench_move_loaddata", "ghd_bench_move_pgloader"):
        admin_sql(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')

    os.environ.update(env_for(f"sqlite:///{source}", work))
    from _setup import machine, print_table  # Django set-up, on the bench's own files

    print(f"\nMachine: {machine()} (source SQLite {sqlite3.sqlite_version}, target PostgreSQL at 127.0.0.1)")
    print(f"Command: .venv/bin/python bench/move_database.py --timers {args.timers}")
    print_table("Data (SQLite source)", ["table", "rows"], [[t, f"{n:,}"] for t, n in sizes.items()])
    print_table("SQLite → PostgreSQL, same data", ["method", "rows", "seconds", "rows/s", "peak RSS MB", "result"], rows)
    vs_dump = results["dump"] / results["move"]
    verdict = [f"≥ {GOAL_VS_DUMP:.0f}x dumpdata|loaddata: {'met' if vs_dump >= GOAL_VS_DUMP else 'MISSED'} ({vs_dump:.1f}x)"]
    if "pgloader" in results:
        vs_pgl = results["move"] / results["pgloader"]
        verdict.append(
            f"within {GOAL_VS_PGLOADER}x of pgloader: {'met' if vs_pgl <= GOAL_VS_PGLOADER else 'MISSED'} ({vs_pgl:.2f}x)"
        )
    move_rss = float(rows[0][4])
    verdict.append(f"≤ {GOAL_RSS_MB:.0f} MB RSS: {'met' if move_rss <= GOAL_RSS_MB else 'MISSED'} ({move_rss:.0f} MB)")
    print("\nGoals: " + "; ".join(verdict))
    print(f"Wall time: {time.perf_counter() - wall:.0f} s; logs in {work}")


if __name__ == "__main__":
    main()
