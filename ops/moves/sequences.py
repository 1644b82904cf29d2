"""Sequences after a copy: the target's next id follows the source's, never below the largest id.

Rows are copied with their ids, which leaves PostgreSQL's sequences at 1 and SQLite's
``sqlite_sequence`` at whatever the inserts made it; without this the first new row would
collide (PostgreSQL) or could reuse the id of a row deleted before the move.
"""

from __future__ import annotations

from contextlib import closing

from django.db.backends.base.base import BaseDatabaseWrapper

from ops.moves.tables import TableSpec


def last_used_id(connection: BaseDatabaseWrapper, spec: TableSpec) -> int:
    """The last id the table's sequence handed out on ``connection`` (0 when none)."""
    assert spec.auto_pk_column is not None
    with closing(connection.connection.cursor()) as cursor:
        if connection.vendor == "postgresql":
            cursor.execute("SELECT pg_get_serial_sequence(%s, %s)", [connection.ops.quote_name(spec.table), spec.auto_pk_column])
            sequence = cursor.fetchone()[0]
            if sequence is None:
                return 0
            cursor.execute(f"SELECT last_value, is_called FROM {sequence}")  # the name comes quoted from the server
            last_value, is_called = cursor.fetchone()
            return int(last_value) if is_called else int(last_value) - 1
        if not _has_sqlite_sequence(cursor):
            return 0
        cursor.execute("SELECT seq FROM sqlite_sequence WHERE name = ?", [spec.table])
        row = cursor.fetchone()
        return int(row[0]) if row else 0


def sequence_set(connection: BaseDatabaseWrapper, spec: TableSpec, *, last_id: int) -> None:
    """Make the next id the target hands out ``last_id + 1``."""
    assert spec.auto_pk_column is not None
    with closing(connection.connection.cursor()) as cursor:
        if connection.vendor == "postgresql":
            cursor.execute("SELECT pg_get_serial_sequence(%s, %s)", [connection.ops.quote_name(spec.table), spec.auto_pk_column])
            sequence = cursor.fetchone()[0]
            if sequence is not None:
                # setval(seq, n, true) makes nextval return n + 1; (seq, 1, false) makes it return 1.
                cursor.execute("SELECT setval(%s, %s, %s)", [sequence, max(last_id, 1), last_id >= 1])
            return
        if not _has_sqlite_sequence(cursor):
            return  # no AUTOINCREMENT table: SQLite takes max(rowid) + 1 by itself
        cursor.execute("DELETE FROM sqlite_sequence WHERE name = ?", [spec.table])
        if last_id >= 1:
            cursor.execute("INSERT INTO sqlite_sequence (name, seq) VALUES (?, ?)", [spec.table, last_id])


def _has_sqlite_sequence(cursor) -> bool:
    cursor.execute("SELECT 1 FROM sqlite_master WHERE type = 'table' AND name = 'sqlite_sequence'")
    return cursor.fetchone() is not None
