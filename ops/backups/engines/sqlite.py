"""SQLite: dumps through django-dbbackup's backup-API connector, restores through the same API.

A restore copies the dump into the live file with SQLite's online backup API, in one
transaction: other processes keep their connections and see either the old database or
the new one, never a mix, and a failure leaves the old one in place. (dbbackup's own
restore writes over the file while connections and the WAL file still hold the old one.)
"""

from __future__ import annotations

import contextlib
import sqlite3
import tempfile
from collections.abc import Iterator
from pathlib import Path

from dbbackup.db.sqlite import SqliteBackupConnector
from django.db import connections

from ops.backups.engines.common import DumpUnreadable, quote_table

VENDOR = "sqlite"
EXTENSION = SqliteBackupConnector.extension
GZIP_LEVEL = 6  # a SQLite file is uncompressed pages: worth compressing
CONNECTOR = "dbbackup.db.sqlite.SqliteBackupConnector"
MAGIC = b"SQLite format 3\x00"


class _DiskBackupConnector(SqliteBackupConnector):
    """dbbackup's backup-API connector, writing to a path (its ``create_dump`` keeps the copy in memory)."""

    def dump_to(self, dest: Path) -> None:
        self.connection.ensure_connection()
        with contextlib.closing(sqlite3.connect(dest)) as target:
            self.connection.connection.backup(target)


def _open_readonly(path: Path) -> contextlib.closing[sqlite3.Connection]:
    # immutable: no locks, no -wal/-shm files next to a dump that nobody else opens.
    return contextlib.closing(sqlite3.connect(f"{Path(path).resolve().as_uri()}?immutable=1", uri=True))


def _table_counts(db: sqlite3.Connection) -> dict[str, int]:
    names = [
        row[0]
        for row in db.execute(
            "SELECT name FROM sqlite_master WHERE type = 'table' AND name NOT LIKE 'sqlite\\_%' ESCAPE '\\' ORDER BY name"
        )
    ]
    return {name: db.execute(f"SELECT COUNT(*) FROM {quote_table(name)}").fetchone()[0] for name in names}


def dump_create(alias: str, dest: Path) -> dict[str, int]:
    """Write a consistent copy of the database to ``dest``; return its row count per table."""
    _DiskBackupConnector(alias).dump_to(dest)
    with _open_readonly(dest) as db:
        return _table_counts(db)  # counted in the copy itself, so they are exactly the dump's


def dump_check(path: Path) -> None:
    """Raise DumpUnreadable unless SQLite's quick_check passes on the whole file."""
    try:
        with _open_readonly(path) as db:
            result = [row[0] for row in db.execute("PRAGMA quick_check")]
    except sqlite3.DatabaseError as exc:
        raise DumpUnreadable(f"SQLite cannot read it ({exc})") from exc
    if result != ["ok"]:
        raise DumpUnreadable(f"SQLite's integrity check fails ({result[0]})")


def dump_migrations(path: Path) -> list[tuple[str, str]]:
    """The (app, migration) pairs recorded as applied in the dump, in the order they were applied."""
    try:
        with _open_readonly(path) as db:
            return [(app, name) for app, name in db.execute("SELECT app, name FROM django_migrations ORDER BY id")]
    except sqlite3.DatabaseError as exc:
        raise DumpUnreadable(f"it has no readable migration table ({exc})") from exc


def _checkpoint(db: sqlite3.Connection) -> None:
    # Fold the WAL into the main file so that no frame of the old database outlives the copy.
    db.execute("PRAGMA wal_checkpoint(TRUNCATE)").fetchall()


def dump_restore(path: Path, *, alias: str, name: str) -> None:
    """Copy the dump over the database file ``name`` in one transaction."""
    timeout = connections[alias].settings_dict.get("OPTIONS", {}).get("timeout", 20)
    with _open_readonly(path) as source, contextlib.closing(sqlite3.connect(name, timeout=timeout)) as target:
        _checkpoint(target)
        source.backup(target)
        _checkpoint(target)


@contextlib.contextmanager
def scratch_database(alias: str) -> Iterator[str]:
    """A throw-away database file for a drill, removed afterwards."""
    with tempfile.TemporaryDirectory(prefix="guildhall-drill-") as folder:
        yield str(Path(folder) / "scratch.sqlite3")


def database_counts(alias: str, name: str) -> dict[str, int]:
    """Row count per table of the database file ``name``."""
    with _open_readonly(Path(name)) as db:
        return _table_counts(db)
