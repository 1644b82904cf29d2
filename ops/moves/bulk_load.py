"""A target table made ready for a bulk load, and finished after it, inside the table's transaction.

Secondary indexes are set aside and built again after the copy: building an index once
over a full table is a sort, while keeping eight up to date row by row (the timers table
has that many) was most of the target's work in the benchmark. Indexes that back a
constraint (primary key, UNIQUE) stay: they guard the copy itself. Both engines have
transactional DDL, so a copy that fails leaves every index in place.

On PostgreSQL the (empty) table is also truncated in the same transaction, which lets
``COPY … WITH (FREEZE)`` write its rows frozen: without it the first read after the load
(the verification) rewrote every page to set hint bits, at half the speed of the copy.
"""

from __future__ import annotations

from contextlib import closing
from dataclasses import dataclass

from django.db.backends.base.base import BaseDatabaseWrapper

_SECONDARY_POSTGRESQL = """
    SELECT c.relname, pg_get_indexdef(i.indexrelid)
    FROM pg_index i JOIN pg_class c ON c.oid = i.indexrelid
    WHERE i.indrelid = %s::regclass
      AND NOT EXISTS (SELECT 1 FROM pg_constraint k WHERE k.conindid = i.indexrelid)
    ORDER BY c.relname
"""
_SECONDARY_SQLITE = "SELECT name, sql FROM sqlite_master WHERE type = 'index' AND tbl_name = ? AND sql IS NOT NULL ORDER BY name"
# The table and every table whose foreign keys lead to it: TRUNCATE wants them all at once.
_REFERENCING_POSTGRESQL = """
    WITH RECURSIVE refs(oid) AS (
        SELECT %s::regclass::oid
        UNION SELECT k.conrelid FROM pg_constraint k JOIN refs ON k.confrelid = refs.oid WHERE k.contype = 'f'
    )
    SELECT oid::regclass::text FROM refs
"""


@dataclass
class BulkLoad:
    """What a table's copy may do (``freeze``) and what must be rebuilt after it."""

    freeze: bool
    rebuild: list[str]


def bulk_load_prepare(connection: BaseDatabaseWrapper, table: str) -> BulkLoad:
    """Set the table's secondary indexes aside and, on PostgreSQL, truncate it for COPY FREEZE."""
    quote = connection.ops.quote_name
    with closing(connection.connection.cursor()) as cursor:
        freeze = False
        if connection.vendor == "postgresql":
            cursor.execute(_REFERENCING_POSTGRESQL, [quote(table)])
            related = [str(name) for (name,) in cursor.fetchall()]
            cursor.execute(" UNION ALL ".join(f"(SELECT 1 FROM {name} LIMIT 1)" for name in related))
            # Only when all of them are still empty: a truncation must never take copied rows with it.
            if cursor.fetchone() is None:
                cursor.execute(f"TRUNCATE {', '.join(related)}")
                freeze = True
            cursor.execute(_SECONDARY_POSTGRESQL, [quote(table)])
        else:
            cursor.execute(_SECONDARY_SQLITE, [table])
        found = [(str(name), str(sql)) for name, sql in cursor.fetchall()]
        for name, _ in found:
            cursor.execute(f"DROP INDEX {quote(name)}")
    return BulkLoad(freeze=freeze, rebuild=[sql for _, sql in found])


def bulk_load_finish(connection: BaseDatabaseWrapper, load: BulkLoad) -> None:
    """Build the indexes set aside again."""
    with closing(connection.connection.cursor()) as cursor:
        for sql in load.rebuild:
            cursor.execute(sql)
