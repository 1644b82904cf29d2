"""Reading a table in primary-key order, writing it in batches, and its checksum.

Rows stream through in batches (a server-side cursor on PostgreSQL, ``fetchmany`` on
SQLite), so memory stays flat whatever the table's size. PostgreSQL targets are written
with ``COPY … FROM STDIN`` (psycopg 3's ``cursor.copy``), SQLite ones with
``executemany``; neither goes through the ORM row by row.
"""

from __future__ import annotations

import hashlib
import itertools
from collections.abc import Callable, Iterator
from contextlib import closing
from dataclasses import dataclass
from typing import Any

from django.db.backends.base.base import BaseDatabaseWrapper
from psycopg.copy import QueuedLibpqWriter
from psycopg.types.string import TextLoader

from ops.moves.tables import TableSpec, row_mapper, select_sql

_cursor_names = itertools.count(1)


@dataclass
class TableSum:
    """What was read of one table: its rows, checksum and the largest primary key (for sequences)."""

    rows: int
    checksum: str
    max_pk: Any


class Checksum:
    """SHA-256 over the rows in order, each in its canonical form; independent of batch sizes."""

    def __init__(self, spec: TableSpec) -> None:
        self._pk_index = spec.pk_index
        self._canonical = row_mapper(spec.canonicals(), len(spec.fields))
        self._hash = hashlib.sha256()
        self.rows = 0
        self.last: Any = None

    def add(self, rows: list[Any]) -> None:
        self.rows += len(rows)
        self.last = rows[-1]
        if self._canonical is not None:
            rows = [self._canonical(row) for row in rows]
        self._hash.update(("\n".join(map(repr, rows)) + "\n").encode("utf-8", "backslashreplace"))

    def result(self) -> TableSum:
        return TableSum(rows=self.rows, checksum=self._hash.hexdigest(), max_pk=self.last[self._pk_index] if self.last else None)


def count_rows(connection: BaseDatabaseWrapper, table: str) -> int:
    """The table's row count (for the progress bar's total)."""
    with closing(connection.connection.cursor()) as cursor:
        cursor.execute(f"SELECT COUNT(*) FROM {connection.ops.quote_name(table)}")
        return int(cursor.fetchone()[0])


def read_batches(connection: BaseDatabaseWrapper, spec: TableSpec, batch: int) -> Iterator[list[Any]]:
    """The table's rows in primary-key order, ``batch`` at a time (inside the caller's transaction)."""
    raw = connection.connection
    if connection.vendor == "postgresql":
        # A named (server-side) cursor: the server holds the result, the client one batch of it.
        cursor = raw.cursor(name=f"guildhall_move_{next(_cursor_names)}")
        # Timestamps as the server's UTC text: Django's Python-level tz loader cost ~4 µs a value.
        cursor.adapters.register_loader("timestamptz", TextLoader)
    else:
        cursor = raw.cursor()
    try:
        cursor.execute(select_sql(connection, spec))
        while rows := cursor.fetchmany(batch):
            yield rows
    finally:
        cursor.close()


def copy_table(
    source: BaseDatabaseWrapper,
    target: BaseDatabaseWrapper,
    spec: TableSpec,
    *,
    batch: int,
    advance: Callable[[int], None],
    freeze: bool = False,
) -> TableSum:
    """Copy one table's rows from ``source`` to ``target``; return the checksum of what was read."""
    checksum = Checksum(spec)
    convert = row_mapper(spec.converters(source.vendor, target.vendor), len(spec.fields))
    quote = target.ops.quote_name
    columns = ", ".join(quote(c) for c in spec.columns)
    raw = target.connection
    with closing(raw.cursor()) as cursor:
        if target.vendor == "postgresql":
            if spec.parents and not spec.self_referencing:
                cursor.execute("SET CONSTRAINTS ALL IMMEDIATE")  # parents are in: no queue of deferred checks
            # A writer thread sends to the server while this one reads and converts the next batch.
            with cursor.copy(
                f"COPY {quote(spec.table)} ({columns}) FROM STDIN{' WITH (FREEZE)' if freeze else ''}",
                writer=QueuedLibpqWriter(cursor),
            ) as copy:
                for rows in read_batches(source, spec, batch):
                    checksum.add(rows)
                    for row in map(convert, rows) if convert else rows:
                        copy.write_row(row)
                    advance(len(rows))
        else:
            insert = f"INSERT INTO {quote(spec.table)} ({columns}) VALUES ({', '.join('?' * len(spec.columns))})"
            for rows in read_batches(source, spec, batch):
                checksum.add(rows)
                cursor.executemany(insert, map(convert, rows) if convert else rows)
                advance(len(rows))
    return checksum.result()


def checksum_table(connection: BaseDatabaseWrapper, spec: TableSpec, *, batch: int, advance: Callable[[int], None]) -> TableSum:
    """Read a table back and checksum it exactly as ``copy_table`` did the source."""
    checksum = Checksum(spec)
    for rows in read_batches(connection, spec, batch):
        checksum.add(rows)
        advance(len(rows))
    return checksum.result()
