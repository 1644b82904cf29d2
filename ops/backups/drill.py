"""The restore drill: restore a backup into a scratch database and count what came back.

A backup nobody has restored is a hope. The drill verifies the newest backup, restores it
with the same code a real restore uses into a database of its own (a temporary file on
SQLite, a temporary database on the same PostgreSQL server), and compares the row count of
every table with the counts recorded when the backup was made. The live database is not
touched.

Each drill run by the schedule (every BACKUP_DRILL_DAYS days) or by ``manage.py backup_drill``
is kept as a DrillResult (shown on the Status page): the newest backup, which is the newest
off-site copy when BACKUP_STORAGE_URL is set (the catalog reads through that storage), and,
when a point-in-time recovery engine is configured, a restore to its latest moment.
"""

from __future__ import annotations

import contextlib
import logging
import os
import pwd
import shutil
import socket
import subprocess
import tempfile
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from datetime import datetime, timedelta
from pathlib import Path
from types import ModuleType

from django.conf import settings
from django.db import DEFAULT_DB_ALIAS, connections
from django.utils import timezone

from config.errors import ApplicationError
from ops.backups.catalog import backups_list
from ops.backups.engines import engine_for
from ops.backups.errors import BackupFailed, BackupNotFound, BackupSidecarMissing
from ops.backups.verify import backup_unpacked
from ops.models import DrillResult
from ops.pitr.engines import pitr_engine
from ops.pitr.errors import PitrNotConfigured

logger = logging.getLogger(__name__)


@dataclass(frozen=True)
class DrillRow:
    table: str
    expected: int | None  # recorded in the sidecar (None: the table was not in the backup)
    restored: int | None  # counted in the scratch database (None: the table did not come back)

    @property
    def ok(self) -> bool:
        return self.expected == self.restored


@dataclass(frozen=True)
class DrillReport:
    name: str
    vendor: str
    rows: list[DrillRow]
    seconds: float

    @property
    def ok(self) -> bool:
        return bool(self.rows) and all(row.ok for row in self.rows)

    @property
    def mismatches(self) -> list[DrillRow]:
        return [row for row in self.rows if not row.ok]


def backup_drill_candidate(*, vendor: str, trust_unsigned: bool = False) -> str:
    """The newest verifiable (and, unless ``trust_unsigned``, signed) backup of ``vendor``; BackupNotFound when none."""
    candidates = [
        b
        for b in backups_list()
        if not b.problem and b.tables is not None and b.vendor == vendor and (trust_unsigned or not b.signature_problem)
    ]
    if not candidates:
        raise BackupNotFound("There is no backup to drill yet: make one first.")
    return candidates[0].name


def backup_drill(
    *, name: str | None = None, alias: str = DEFAULT_DB_ALIAS, trust_unsigned: bool = False, actor: str = ""
) -> DrillReport:
    """Restore ``name`` (default: the newest verifiable, signed backup) into a scratch database and compare counts.

    ``trust_unsigned`` drills a file this installation did not sign (logged with ``actor``).
    """
    vendor = connections[alias].vendor
    if name is None:
        name = backup_drill_candidate(vendor=vendor, trust_unsigned=trust_unsigned)
    engine = engine_for(vendor)
    started = time.monotonic()
    with backup_unpacked(name=name, alias=alias, trust_unsigned=trust_unsigned, actor=actor) as verified:
        expected = verified.info.tables
        if expected is None:
            raise BackupSidecarMissing(f"Backup {name} has no recorded row counts to compare with.")
        try:
            with engine.scratch_database(alias) as scratch:
                engine.dump_restore(verified.dump, alias=alias, name=scratch)
                restored = engine.database_counts(alias, scratch)
        except Exception as exc:  # the tools', the driver's and the disk's errors alike: the drill failed
            logger.exception("drill of %s failed", name)
            raise BackupFailed(f"The drill could not restore {name} into a scratch database: {exc}") from exc
    rows = [DrillRow(table, expected.get(table), restored.get(table)) for table in sorted(set(expected) | set(restored))]
    return DrillReport(name=name, vendor=vendor, rows=rows, seconds=time.monotonic() - started)


def drill_source() -> str:
    """Where the newest backup lives: off-site when BACKUP_STORAGE_URL points the catalog at object storage."""
    return DrillResult.Source.OFFSITE if getattr(settings, "BACKUP_STORAGE_URL", "") else DrillResult.Source.LOCAL


def backup_drill_recorded(
    *, name: str | None = None, alias: str = DEFAULT_DB_ALIAS, trust_unsigned: bool = False, actor: str = ""
) -> tuple[DrillResult, DrillReport | None]:
    """Run ``backup_drill`` and keep its result, a failure included (the error is what an admin reads)."""
    started_at, started = timezone.now(), time.monotonic()
    result = DrillResult(started_at=started_at, source=drill_source(), backup=name or "", vendor=connections[alias].vendor)
    report = None
    try:
        # Chosen first, so that a drill that fails still says which backup it was.
        name = name or backup_drill_candidate(vendor=result.vendor, trust_unsigned=trust_unsigned)
        result.backup = name
        report = backup_drill(name=name, alias=alias, trust_unsigned=trust_unsigned, actor=actor)
    except ApplicationError as exc:
        result.error = str(exc)
    except Exception as exc:  # kept as a failed drill all the same (the alert reads it)
        logger.exception("drill failed")
        result.error = f"{type(exc).__name__}: {exc}"
    else:
        result.backup = report.name
        result.tables_compared = len(report.rows)
        result.rows_compared = sum(row.expected or 0 for row in report.rows)
        result.mismatches = [[row.table, row.expected, row.restored] for row in report.mismatches]
        result.passed = report.ok
        if not report.ok:
            result.error = f"{len(report.mismatches)} table(s) differ"
    result.duration_seconds = time.monotonic() - started
    result.save()
    return result, report


def configured_pitr_engine() -> ModuleType | None:
    """The point-in-time recovery engine of the default database when it is configured here, else None."""
    try:
        return pitr_engine()
    except PitrNotConfigured:
        return None


def _free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return probe.getsockname()[1]


@contextlib.contextmanager
def _pitr_scratch(vendor: str) -> Iterator[tuple[str, Callable[[], dict[str, int]]]]:
    """(``--into`` for the engine's restore, a function counting the restored rows); removed afterwards."""
    with tempfile.TemporaryDirectory(prefix="guildhall-pitr-drill-") as folder:
        if vendor != "postgresql":
            path = str(Path(folder) / "restored.sqlite3")
            yield path, lambda: engine_for(vendor).database_counts(DEFAULT_DB_ALIAS, path)
            return
        import psycopg

        from ops.backups.engines.postgresql import _table_counts  # the drill's own count, on another server

        datadir, port = Path(folder) / "data", _free_port()
        os.chmod(folder, 0o755)  # pgBackRest restores as the cluster's OS user, which must reach the directory

        def counts() -> dict[str, int]:
            dbname = connections[DEFAULT_DB_ALIAS].settings_dict["NAME"]
            with psycopg.connect(host="127.0.0.1", port=port, user="postgres", dbname=dbname) as conn, conn.cursor() as cur:
                return _table_counts(cur)

        try:
            yield f"postgres://postgres@127.0.0.1:{port}/postgres?datadir={datadir}", counts
        finally:
            if (datadir / "postmaster.pid").exists():
                pg_ctl = shutil.which("pg_ctl") or "/usr/lib/postgresql/15/bin/pg_ctl"
                owner = datadir.stat().st_uid
                prefix = ["runuser", "-u", pwd.getpwuid(owner).pw_name, "--"] if os.geteuid() == 0 and owner else []
                subprocess.run(
                    [*prefix, pg_ctl, "stop", "-D", str(datadir), "-m", "immediate", "-w"], check=False, capture_output=True
                )


def pitr_drill_recorded(engine: ModuleType, *, alias: str = DEFAULT_DB_ALIAS) -> DrillResult:
    """Restore the PITR engine's latest moment into a scratch database and check that every live table came back."""
    vendor = connections[alias].vendor
    started_at, started = timezone.now(), time.monotonic()
    result = DrillResult(started_at=started_at, source=DrillResult.Source.PITR, vendor=vendor)
    db_engine = engine_for(vendor)
    try:
        window = engine.window()
        moment: datetime | None = window.latest
        result.backup = f"{window.engine} at {moment:%Y-%m-%d %H:%M:%S}" if moment else window.engine
        if moment is None:
            raise BackupFailed(f"{window.engine} has no restorable moment yet{f': {window.problem}' if window.problem else ''}.")
        live = db_engine.database_counts(alias, connections[alias].settings_dict["NAME"])
        with _pitr_scratch(vendor) as (into, counts):
            engine.restore(moment, into)
            restored = counts()
        missing = sorted(set(live) - set(restored))
        result.tables_compared = len(live)
        result.rows_compared = sum(restored.values())
        result.mismatches = [[table, live[table], None] for table in missing]
        result.passed = not missing
        result.error = f"{len(missing)} table(s) did not come back" if missing else ""
    except Exception as exc:  # the engine's, the tools' and the disk's errors alike: the drill failed
        logger.exception("point-in-time recovery drill failed")
        result.error = str(exc) or type(exc).__name__
    result.duration_seconds = time.monotonic() - started
    result.save()
    return result


def drill_due(now: datetime | None = None) -> bool:
    """Whether BACKUP_DRILL_DAYS have passed since the last scheduled or manual drill of a backup (or none ran)."""
    last = DrillResult.objects.exclude(source=DrillResult.Source.PITR).order_by("-started_at").first()
    return last is None or (now or timezone.now()) - last.started_at >= timedelta(days=settings.BACKUP_DRILL_DAYS)


def drill_scheduled(force: bool = False) -> str:
    """The scheduled drill (q2, daily): when due, the newest backup, then a PITR restore when an engine is configured.

    Every result is kept; the task fails (and shows so on the Status page) when any drill failed.
    """
    if not force and not drill_due():
        return f"not due: the last drill was less than {settings.BACKUP_DRILL_DAYS} days ago"
    results = [backup_drill_recorded()[0]]
    engine = configured_pitr_engine()
    if engine is not None:
        results.append(pitr_drill_recorded(engine))
    summary = "; ".join(
        f"{r.get_source_display()} {r.backup or '-'}: {'passed' if r.passed else f'FAILED ({r.error})'}" for r in results
    )
    if not all(r.passed for r in results):
        raise BackupFailed(f"restore drill failed: {summary}")
    return summary
