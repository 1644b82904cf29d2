"""RPO and RTO of Guildhall's recovery paths, measured in one run on this machine.

    .venv/bin/python bench/reliability.py [--size-mb 1024] [--load-seconds 20] [--rate 50] [--trials 3]
        [--pg-load-seconds 150] [--archive-timeout 60] [--only rpo-sqlite,rpo-pg,rto-pg,rto-sqlite] [--port-base 5450]

RPO: seconds of acknowledged writes lost when the machine dies under write load. A writer
process creates custom commands through the product's service (``command_create``) at
``--rate`` per second and logs each one with its time once the call has returned (the commit
is acknowledged). Then the writer, the database server and the archiver are SIGKILLed at the
same instant, the database files are deleted as a lost disk would be, and each recovery path
restores the latest it can; the acknowledged writes missing from the restore are the loss,
and the seconds between the first lost write and the kill are the RPO.

- daily snapshots: the product's backup (``backup_create``), taken as the load starts, put back
  with ``backup_restore`` into a fresh installation: everything after the snapshot is gone
  (with the daily schedule, up to 24 h);
- Litestream: the SQLite file replicated by the Procfile's process (``litestream_config
  --replicate``), restored with ``ops.pitr.litestream.restore``;
- pgBackRest: per trial a cluster of its own (initdb, port ``--port-base``) configured by
  ``deploy/pitr/pgbackrest.sh`` (``--archive-timeout``), a full backup, the load, SIGKILL of
  the postmaster and all its children, data directory deleted, ``pgbackrest restore`` of the
  latest into a new directory (archiving off), started, counted.

RTO: the time to restore ``--size-mb`` of product data (``commands_cookieledger`` rows made
with generate_series / a recursive CTE), each path from its own copy, in the same run:
Guildhall's ``backup_restore`` (verify, pre-restore snapshot, pg_restore | psql in one
transaction) against raw ``pg_restore`` of the same dump, ``pgbackrest restore`` plus start,
and a plain ``cp -a`` of the data directory; on SQLite ``backup_restore``, Litestream's restore,
and ``cp`` of the file. Everything lives under ``--dir`` and is removed at the end; the shared
server on 5432 is not touched.
"""

from __future__ import annotations

import argparse
import contextlib
import gzip
import os
import shutil
import signal
import sqlite3
import subprocess
import sys
import tempfile
import time
from datetime import UTC, datetime
from pathlib import Path

from _table import print_table

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from bench._clusters import PG_BIN, Cluster, as_owner, give_to_owner

ROOT = Path(__file__).resolve().parent.parent
PYTHON = sys.executable
SECRET = "bench-reliability-" + "k" * 40  # one key for every installation here: backups stay signed across them
WRITER = r"""
import sys, time, django
django.setup()
from commands.services.custom_commands import command_create
prefix, rate, guild = sys.argv[1], float(sys.argv[2]), int(sys.argv[3])
start, i = time.time(), 0
while True:
    i += 1
    command_create(guild_id=guild, name=f"{prefix}{i}", template="x", author_id=None)
    print(i, repr(time.time()), flush=True)  # acknowledged: the service returned after the commit
    time.sleep(max(0.0, start + i / rate - time.time()))
"""
LEDGER_PG = """
INSERT INTO commands_cookieledger (guild_id, giver_id, receiver_id, delta, reason, message_id, created_at)
SELECT 870000000000000000 + x % 100, 870000000001000000 + x % 5000, 870000000001000000 + (x * 31) % 100000,
       CASE WHEN x % 9 = 0 THEN -1 ELSE 1 END, CASE WHEN x % 9 = 0 THEN 'take' ELSE 'give' END,
       870000000009000000 + x, timestamptz '2025-12-01' + x * interval '3 seconds'
FROM generate_series({a}, {b}) AS x
"""
LEDGER_SQLITE = """
WITH RECURSIVE c(x) AS (SELECT {a} UNION ALL SELECT x + 1 FROM c WHERE x < {b})
INSERT INTO commands_cookieledger (guild_id, giver_id, receiver_id, delta, reason, message_id, created_at)
SELECT 870000000000000000 + x % 100, 870000000001000000 + x % 5000, 870000000001000000 + (x * 31) % 100000,
       CASE WHEN x % 9 = 0 THEN -1 ELSE 1 END, CASE WHEN x % 9 = 0 THEN 'take' ELSE 'give' END,
       870000000009000000 + x, strftime('%Y-%m-%d %H:%M:%S', 1764547200 + x * 3, 'unixepoch')
FROM c
"""


def env_for(data: Path, **extra: str) -> dict[str, str]:
    env = {k: v for k, v in os.environ.items() if k not in ("DATABASE_URL", "DATABASE_REPLICA_URL", "REDIS_URL")}
    env.update(GUILDHALL_DATA_DIR=str(data), SECRET_KEY=SECRET, DJANGO_SETTINGS_MODULE="config.settings")
    env.update(extra)
    return env


def manage(env: dict, *args: str) -> str:
    done = subprocess.run([PYTHON, "manage.py", *args], cwd=ROOT, env=env, capture_output=True, text=True)
    if done.returncode:
        raise RuntimeError(f"manage.py {' '.join(args)}: {done.stderr.strip()[-2000:]}")
    return done.stdout


def product(env: dict, code: str) -> str:
    """Run ``code`` in the installation ``env`` names (Django set up); its stdout."""
    done = subprocess.run(
        [PYTHON, "-c", "import django\ndjango.setup()\n" + code], cwd=ROOT, env=env, capture_output=True, text=True
    )
    if done.returncode:
        raise RuntimeError(f"{code[:80]!r}: {done.stderr.strip()[-2000:]}")
    return done.stdout


def timed(fn, *args, **kwargs) -> float:
    started = time.monotonic()
    fn(*args, **kwargs)
    return time.monotonic() - started


def sh(*args: str, **kwargs) -> None:
    subprocess.run(list(args), check=True, capture_output=True, **kwargs)


class Writer:
    """The write load: one process creating commands through the service, logging each acknowledgement."""

    def __init__(self, env: dict, log: Path, prefix: str, rate: float, guild: int) -> None:
        self.log, self.prefix = log, prefix
        self._out = open(log, "w")  # noqa: SIM115 (open while the writer runs)
        self.process = subprocess.Popen(
            [PYTHON, "-c", WRITER, prefix, str(rate), str(guild)], cwd=ROOT, env=env, stdout=self._out
        )

    def acked(self) -> dict[str, float]:
        self._out.close()
        acked = {}
        for line in self.log.read_text().splitlines():
            parts = line.split()
            if len(parts) == 2:  # a line cut by the kill is not an acknowledgement
                acked[f"{self.prefix}{parts[0]}"] = float(parts[1])
        return acked


def loss(acked: dict[str, float], present: set[str], killed_at: float) -> dict:
    lost = {name: at for name, at in acked.items() if name not in present}
    return {
        "acked": len(acked),
        "lost": len(lost),
        "seconds": killed_at - min(lost.values()) if lost else 0.0,
        "last_ack_to_kill": killed_at - max(acked.values()) if acked else 0.0,
    }


def sqlite_names(path: Path, prefix: str) -> set[str]:
    with sqlite3.connect(f"{path.as_uri()}?mode=ro", uri=True) as db:
        return {r[0] for r in db.execute("SELECT name FROM commands_customcommand WHERE name LIKE ?", (prefix + "%",))}


def start_litestream(env: dict, log: Path, data: Path) -> subprocess.Popen:
    process = subprocess.Popen([PYTHON, "manage.py", "litestream_config", "--replicate"], cwd=ROOT, env=env,
                               stdout=log.open("w"), stderr=subprocess.STDOUT)  # fmt: skip
    deadline = time.monotonic() + 60
    while not (data / "litestream.sock").exists():
        if process.poll() is not None or time.monotonic() > deadline:
            raise RuntimeError(f"litestream did not start: {log.read_text()[-1000:]}")
        time.sleep(0.1)
    return process


# --- RPO ------------------------------------------------------------------------------------


def rpo_sqlite(base: Path, args, trial: int) -> dict:
    """One trial on SQLite: the daily snapshot and Litestream, from the same load."""
    data, backups = base / "data", base / "backups"
    env = env_for(data, LITESTREAM_REPLICA_URL=f"file://{base / 'replica'}", BACKUP_DIR=str(backups))
    manage(env, "migrate", "--noinput")
    litestream = start_litestream(env, base / "litestream.log", data)
    snapshot = product(env, "from ops.backups.services import backup_create\nprint(backup_create(kind='scheduled').name)").strip()
    writer = Writer(env, base / "writes.log", f"s{trial}w", args.rate, 1)
    time.sleep(args.load_seconds)
    killed_at = time.time()
    for process in (writer.process, litestream):
        process.send_signal(signal.SIGKILL)
        process.wait()
    acked = writer.acked()
    for lost in data.glob("guildhall.sqlite3*"):  # the disk is gone: the file, its WAL, Litestream's local state
        lost.unlink()
    shutil.rmtree(data / ".guildhall.sqlite3-litestream", ignore_errors=True)

    restored = base / "restored.sqlite3"
    rto = timed(product, env, f"from datetime import UTC, datetime\nfrom ops.pitr import litestream\n"
                              f"litestream.restore(datetime.now(UTC), {str(restored)!r})")  # fmt: skip
    result = {"litestream": loss(acked, sqlite_names(restored, f"s{trial}w"), killed_at) | {"restore_s": rto}}

    fresh = env_for(base / "fresh", BACKUP_DIR=str(backups))
    manage(fresh, "migrate", "--noinput")
    rto = timed(product, fresh, f"from ops.backups.services import backup_restore\nbackup_restore(name={snapshot!r})")
    present = sqlite_names(base / "fresh" / "guildhall.sqlite3", f"s{trial}w")
    result["snapshot"] = loss(acked, present, killed_at) | {"restore_s": rto}
    return result


class PgStanza:
    """Cluster A on the port base, archived by pgBackRest as deploy/pitr/pgbackrest.sh sets it up."""

    def __init__(self, base: Path, args) -> None:
        self.base, self.args = base, args
        self.conf = base / "pgbackrest.conf"
        self.cluster = Cluster(base / "a", args.port_base).init()
        self.cluster.start()
        for name in ("repo", "log", "lock"):
            (base / name).mkdir(exist_ok=True)
            give_to_owner(base / name)
        sh("bash", str(ROOT / "deploy/pitr/pgbackrest.sh"), "--pgdata", str(self.cluster.data), "--stanza", "bench",
           "--config", str(self.conf), "--repo-path", str(base / "repo"), "--log-path", str(base / "log"),
           "--lock-path", str(base / "lock"), "--archive-timeout", str(args.archive_timeout))  # fmt: skip
        self.cluster.psql("CREATE DATABASE guildhall")
        self.env = env_for(base / "pgdata-env", DATABASE_URL=self.cluster.url("guildhall"), BACKUP_DIR=str(base / "backups"))
        manage(self.env, "migrate", "--noinput")

    def pgbackrest(self, *args: str) -> None:
        sh(*as_owner(["pgbackrest", f"--config={self.conf}", "--stanza=bench", *args]))

    def restore_latest(self, into: Path, port: int) -> Cluster:
        """``pgbackrest restore`` of the newest backup plus all archived WAL into ``into``, started on ``port``.

        Archiving is off in the restored cluster, as ``pitr_restore`` leaves it: it must not push into the repository.
        """
        into.mkdir()
        give_to_owner(into)
        self.pgbackrest("restore", f"--pg1-path={into}", "--archive-mode=off")
        restored = Cluster(into, port)
        restored.configure()  # its own port and socket
        restored.start()
        restored.wait_promoted()  # replayed to the end of the archive, not merely consistent
        return restored

    def archiver(self) -> str:
        return self.cluster.psql(
            "SELECT last_archived_wal || ' at ' || last_archived_time || ', failed ' || failed_count FROM pg_stat_archiver"
        )

    def remove(self) -> None:
        self.cluster.remove()
        shutil.rmtree(self.base, ignore_errors=True)


def rpo_pg(base: Path, args, trial: int) -> dict:
    """One trial on PostgreSQL: a cluster, its stanza and a full backup of its own, the load, the kill, the restore."""
    stanza = PgStanza(base, args)
    try:
        stanza.pgbackrest("backup", "--type=full")
        prefix = f"p{trial}w"
        writer = Writer(stanza.env, base / "writes.log", prefix, args.rate, 2)
        time.sleep(args.pg_load_seconds)
        archived = stanza.archiver()  # the newest segment in the repository just before the kill
        killed_at = time.time()
        stanza.cluster.kill9()
        writer.process.send_signal(signal.SIGKILL)
        writer.process.wait()
        acked = writer.acked()
        shutil.rmtree(stanza.cluster.data)  # the data directory is gone
        started = time.monotonic()
        restored = stanza.restore_latest(base / "restored", args.port_base + 2)
        rto = time.monotonic() - started
        rows = restored.psql(f"SELECT name FROM commands_customcommand WHERE name LIKE '{prefix}%'", "guildhall")
        replayed = [line.split("LOG:  ")[-1] for line in (restored.data / "server.log").read_text().splitlines()
                    if "restored log file" in line or "redo done" in line][-2:]  # fmt: skip
        restored.remove()
        return loss(acked, set(rows.split()), killed_at) | {"restore_s": rto, "archived": f"{archived}; replayed: {replayed}"}
    finally:
        stanza.remove()


# --- RTO ------------------------------------------------------------------------------------


def batch_rows(size_mb: int) -> int:
    return max(20_000, min(1_000_000, size_mb * 1_000))  # a ledger row and its indexes take ~150 bytes


def fill_pg(cluster: Cluster, db: str, size_mb: int) -> int:
    start, batch = 1, batch_rows(size_mb)
    while int(cluster.psql(f"SELECT pg_database_size('{db}')", db)) < size_mb * 1_000_000:
        cluster.psql(LEDGER_PG.format(a=start, b=start + batch - 1), db)
        start += batch
    cluster.psql("VACUUM ANALYZE commands_cookieledger", db)
    return int(cluster.psql(f"SELECT pg_database_size('{db}')", db))


def fill_sqlite(path: Path, size_mb: int) -> int:
    with contextlib.closing(sqlite3.connect(path)) as db:
        start, batch = 1, batch_rows(size_mb)
        page = db.execute("PRAGMA page_size").fetchone()[0]
        while db.execute("PRAGMA page_count").fetchone()[0] * page < size_mb * 1_000_000:
            db.execute(LEDGER_SQLITE.format(a=start, b=start + batch - 1))
            db.commit()
            start += batch
        db.execute("PRAGMA wal_checkpoint(TRUNCATE)")
    return path.stat().st_size


def rto_pg(stanza: PgStanza, args) -> list[list[str]]:
    a, env = stanza.cluster, stanza.env
    size = fill_pg(a, "guildhall", args.size_mb)
    rows = []
    backup_s = timed(stanza.pgbackrest, "backup", "--type=full")
    name = product(env, "from ops.backups.services import backup_create\nprint(backup_create(kind='scheduled').name)").strip()
    b = Cluster(stanza.base / "b", args.port_base + 1).init()
    b.start()
    try:
        b.psql("CREATE DATABASE dst_guildhall")
        target = env_for(stanza.base / "pgdata-env", DATABASE_URL=b.url("dst_guildhall"), BACKUP_DIR=str(stanza.base / "backups"))
        manage(target, "migrate", "--noinput")
        seconds = timed(product, target, f"from ops.backups.services import backup_restore\nbackup_restore(name={name!r})")
        rows.append(["Guildhall backup_restore (verify, snapshot, pg_restore | psql -1)", seconds])
        assert b.psql("SELECT count(*) FROM commands_cookieledger", "dst_guildhall") == a.psql(
            "SELECT count(*) FROM commands_cookieledger", "guildhall"
        )
        dump = stanza.base / "dump.psql.bin"
        with gzip.open(stanza.base / "backups" / name) as packed, open(dump, "wb") as out:
            shutil.copyfileobj(packed, out, 1 << 20)
        b.psql("CREATE DATABASE dst_raw")
        seconds = timed(sh, str(PG_BIN / "pg_restore"), "--no-owner", "-d", b.url("dst_raw"), str(dump))
        rows.append(["raw pg_restore of the same dump (no checks, not one transaction)", seconds])
        dump.unlink()
    finally:
        b.remove()
    started = time.monotonic()
    restored = stanza.restore_latest(stanza.base / "restored-rto", args.port_base + 2)
    rows.append(["pgbackrest restore + start (PITR path, latest)", time.monotonic() - started])
    restored.remove()
    a.psql("CHECKPOINT")
    copy = stanza.base / "copy"
    rows.append(["cp -a of the data directory", timed(sh, "cp", "-a", str(a.data), str(copy))])
    shutil.rmtree(copy)
    du = int(subprocess.run(["du", "-sb", str(a.data)], capture_output=True, text=True).stdout.split()[0])
    extra = f"pg_database_size {size / 1e6:.0f} MB (data dir {du / 1e6:.0f} MB); pgbackrest full backup {backup_s:.0f} s"
    return [[label, f"{s:.1f}", f"{s / 60:.2f}", extra if i == 0 else ""] for i, (label, s) in enumerate(rows)]


def rto_sqlite(base: Path, args) -> list[list[str]]:
    data, backups = base / "data", base / "backups"
    env = env_for(data, LITESTREAM_REPLICA_URL=f"file://{base / 'replica'}", BACKUP_DIR=str(backups))
    manage(env, "migrate", "--noinput")
    size = fill_sqlite(data / "guildhall.sqlite3", args.size_mb)
    rows = []
    name = product(env, "from ops.backups.services import backup_create\nprint(backup_create(kind='scheduled').name)").strip()
    fresh = env_for(base / "fresh", BACKUP_DIR=str(backups))
    manage(fresh, "migrate", "--noinput")
    rows.append(["Guildhall backup_restore (verify, snapshot, backup API copy)",
                 timed(product, fresh, f"from ops.backups.services import backup_restore\nbackup_restore(name={name!r})")])  # fmt: skip
    litestream = start_litestream(env, base / "litestream.log", data)
    try:  # the whole file in the replica first (not timed: that is replication, not restore)
        sh(str(Path(PYTHON).parent / "litestream"), "sync", "-wait", "-timeout", "3600", "-socket", str(data / "litestream.sock"),
           str(data / "guildhall.sqlite3"), timeout=3700)  # fmt: skip
    finally:
        litestream.send_signal(signal.SIGTERM)
        litestream.wait()
    restored = base / "restored.sqlite3"
    rows.append(["Litestream restore (ops.pitr.litestream.restore, quick_check)",
                 timed(product, env, f"from datetime import UTC, datetime\nfrom ops.pitr import litestream\n"
                                     f"litestream.restore(datetime.now(UTC), {str(restored)!r})")])  # fmt: skip
    rows.append(["cp of the file", timed(sh, "cp", str(data / "guildhall.sqlite3"), str(base / "copy.sqlite3"))])
    return [
        [label, f"{s:.1f}", f"{s / 60:.2f}", f"file {size / 1e6:.0f} MB" if i == 0 else ""] for i, (label, s) in enumerate(rows)
    ]


# --- Report ---------------------------------------------------------------------------------


def machine() -> str:
    cpu = next(
        (
            line.split(":", 1)[1].strip()
            for line in Path("/proc/cpuinfo").read_text().splitlines()
            if line.startswith("model name")
        ),
        "?",
    )
    mem = int(Path("/proc/meminfo").read_text().split()[1]) / 1024 / 1024
    versions = [
        subprocess.run([str(Path(PYTHON).parent / "litestream"), "version"], capture_output=True, text=True).stdout.strip(),
        subprocess.run(["pgbackrest", "version"], capture_output=True, text=True).stdout.strip(),
        subprocess.run([str(PG_BIN / "postgres"), "--version"], capture_output=True, text=True).stdout.strip(),
    ]
    return f"{cpu}, {os.cpu_count()} cores, {mem:.0f} GiB; litestream {versions[0]}, {versions[1]}, {versions[2]}"


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--size-mb", type=int, default=1024, help="RTO data size (default 1024)")
    parser.add_argument("--load-seconds", type=float, default=20, help="SQLite write load before the kill")
    parser.add_argument("--pg-load-seconds", type=float, default=150, help="PostgreSQL write load before the kill")
    parser.add_argument("--rate", type=float, default=50, help="acknowledged writes per second asked of the writer")
    parser.add_argument("--trials", type=int, default=3)
    parser.add_argument("--archive-timeout", type=int, default=60, help="deploy/pitr/pgbackrest.sh --archive-timeout")
    parser.add_argument("--only", help="comma-separated parts: rpo-sqlite, rpo-pg, rto-pg, rto-sqlite (default: all)")
    parser.add_argument("--port-base", type=int, default=5450, help="clusters on this port and the next two")
    parser.add_argument("--dir", default=None, help="work directory (default: a temp dir, removed at the end)")
    args = parser.parse_args()
    work = Path(args.dir or tempfile.mkdtemp(prefix="gh_bench_reliability_"))
    work.mkdir(parents=True, exist_ok=True)
    give_to_owner(work)
    print(f"{datetime.now(UTC):%Y-%m-%d %H:%M} UTC; {machine()}; load average at start {os.getloadavg()[0]:.1f}")
    print(f"args: {vars(args)}")
    parts = set(args.only.split(",")) if args.only else {"rpo-sqlite", "rpo-pg", "rto-pg", "rto-sqlite"}
    rows: list[list] = []
    try:
        for trial in range(1, args.trials + 1) if "rpo-sqlite" in parts else ():
            r = rpo_sqlite(work / f"sqlite{trial}", args, trial)
            for path, label in (
                ("snapshot", "daily snapshot (backup_create at load start)"),
                ("litestream", "Litestream (1 s sync)"),
            ):
                x = r[path]
                rows.append([label, trial, x["acked"], x["lost"], f"{x['seconds']:.2f}", f"{x['restore_s']:.1f}"])
            shutil.rmtree(work / f"sqlite{trial}")
        for trial in range(1, args.trials + 1) if "rpo-pg" in parts else ():
            x = rpo_pg(work / f"pg-rpo{trial}", args, trial)
            print(f"pgBackRest trial {trial}: newest segment in the repository before the kill: {x['archived']}")
            rows.append([f"pgBackRest (archive_timeout {args.archive_timeout} s)", trial, x["acked"], x["lost"],
                         f"{x['seconds']:.2f}", f"{x['restore_s']:.1f}"])  # fmt: skip
        if rows:
            print_table(f"RPO: SIGKILL under {args.rate:g} writes/s (SQLite {args.load_seconds:g} s, PostgreSQL {args.pg_load_seconds:g} s of load)",
                  ["path", "trial", "acked writes", "lost", "RPO (s)", "restore (s)"], rows)  # fmt: skip
        headers = ["restore path", "seconds", "minutes", "data"]
        if "rto-pg" in parts:
            stanza = PgStanza(work / "pg", args)
            try:
                print_table(f"RTO on PostgreSQL: {args.size_mb} MB", headers, rto_pg(stanza, args))
            finally:
                stanza.remove()
        if "rto-sqlite" in parts:
            print_table(f"RTO on SQLite: {args.size_mb} MB", headers, rto_sqlite(work / "sqlite-rto", args))
    finally:
        for sub in (
            "pg/a",
            "pg/b",
            "pg/restored-rto",
            *(f"pg-rpo{i}/{d}" for i in range(1, args.trials + 1) for d in ("a", "restored")),
        ):
            Cluster(work / sub, 0).stop()
        print(f"\nload average at the end {os.getloadavg()[0]:.1f}")
        if not args.dir:
            shutil.rmtree(work, ignore_errors=True)


if __name__ == "__main__":
    main()
