"""Secondary indexes set aside during a table's copy and built again after it, in the same transaction.

Building an index once over a full table is a sort; keeping eight of them up to date row
by row (the timers table has that many) was most of the target's work in the benchmark.
Both engines have transactional DDL, so a copy that fails leaves every index in place.
Indexes that back a constraint (primary key, UNIQUE) stay: they guard the copy itself.
"""

from __future__ import annotations

from contextlib import closing

from django.db.backends.base.base import BaseDatabaseWrapper

_POSTGRESQL = """
    SELECT c.relname, pg_get_indexdef(i.indexrelid)
    FROM pg_index i JOIN pg_class c ON c.oid = i.indexrelid
    WHERE i.indrelid = %s::regclass
      AND NOT EXISTS (SELECT 1 FROM pg_constraint k WHERE k.conindid = i.indexrelid)
    ORDER BY c.relname
"""
_SQLITE = "SELECT name, sql FROM sqlite_master WHERE type = 'index' AND tbl_name = ? AND sql IS NOT NULL ORDER BY name"


def indexes_set_aside(connection: BaseDatabaseWrapper, table: str) -> list[str]:
    """Drop the table's secondary indexes (inside the caller's transaction); return the statements that rebuild them."""
    quote = connection.ops.quote_name
    with closing(connection.connection.cursor()) as cursor:
        if connection.vendor == "postgresql":
            cursor.execute(_POSTGRESQL, [quote(table)])
        else:
            cursor.execute(_SQLITE, [table])
        found = [(str(name), str(sql)) for name, sql in cursor.fetchall()]
        for name, _ in found:
            cursor.execute(f"DROP INDEX {quote(name)}")
    return [sql for _, sql in found]


def indexes_rebuild(connection: BaseDatabaseWrapper, statements: list[str]) -> None:
    """Build the indexes set aside again."""
    with closing(connection.connection.cursor()) as cursor:
        for sql in statements:
            cursor.execute(sql)
