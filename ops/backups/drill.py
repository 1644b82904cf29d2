"""The restore drill: restore a backup into a scratch database and count what came back.

A backup nobody has restored is a hope. The drill verifies the newest backup, restores it
with the same code a real restore uses into a database of its own (a temporary file on
SQLite, a temporary database on the same PostgreSQL server), and compares the row count of
every table with the counts recorded when the backup was made. The live database is not
touched.
"""

from __future__ import annotations

import logging
import time
from dataclasses import dataclass

from django.db import DEFAULT_DB_ALIAS, connections

from ops.backups.catalog import backups_list
from ops.backups.engines import engine_for
from ops.backups.errors import BackupFailed, BackupNotFound, BackupSidecarMissing
from ops.backups.verify import backup_unpacked

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


def backup_drill(
    *, name: str | None = None, alias: str = DEFAULT_DB_ALIAS, trust_unsigned: bool = False, actor: str = ""
) -> DrillReport:
    """Restore ``name`` (default: the newest verifiable, signed backup) into a scratch database and compare counts.

    ``trust_unsigned`` drills a file this installation did not sign (logged with ``actor``).
    """
    vendor = connections[alias].vendor
    if name is None:
        candidates = [
            b
            for b in backups_list()
            if not b.problem and b.tables is not None and b.vendor == vendor and (trust_unsigned or not b.signature_problem)
        ]
        if not candidates:
            raise BackupNotFound("There is no backup to drill yet: make one first.")
        name = candidates[0].name
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
