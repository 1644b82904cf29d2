"""PgHero's space and index checks, written against pg_catalog and the pg_stat_* views.

Each function is one check; its docstring's first line is the name shown if it cannot run.
Activity checks (connections, queries, vacuum, wraparound, replication) are in
``postgres_activity``.
"""

from __future__ import annotations

from config.checks import FAIL, PASS, WARN, level
from ops.dbhealth.checks import Check, fetch, size_text

# The schemas that hold the application's tables (not the catalogs, not TOAST).
USER_SCHEMAS = "n.nspname NOT IN ('pg_catalog', 'information_schema') AND n.nspname !~ '^pg_toast'"
CACHE_HIT_WARN, CACHE_HIT_FAIL = 0.99, 0.90
SEQ_SCAN_MIN_ROWS, SEQ_SCAN_INDEX_PERCENT = 10_000, 95
TOP = 20


def database_bytes() -> int:
    """The database's size on disk."""
    return int(fetch("SELECT pg_database_size(current_database())")[0][0])


def table_stats(limit: int = TOP) -> dict[str, dict[str, int | None]]:
    """The largest tables: estimated rows (pg_class.reltuples, never a COUNT) and total bytes."""
    rows = fetch(
        f"""
        SELECT c.relname, c.reltuples::bigint, pg_total_relation_size(c.oid)
        FROM pg_class c JOIN pg_namespace n ON n.oid = c.relnamespace
        WHERE c.relkind IN ('r', 'm', 'p') AND {USER_SCHEMAS}
        ORDER BY pg_total_relation_size(c.oid) DESC LIMIT %s
        """,
        [limit],
    )
    return {name: {"rows": _estimate(tuples), "bytes": int(size)} for name, tuples, size in rows}


def _estimate(reltuples: int | None) -> int | None:
    # reltuples is -1 until the table's first VACUUM or ANALYZE: unknown, not zero.
    return None if reltuples is None or reltuples < 0 else int(reltuples)


def database_size() -> Check:
    """Database size."""
    rows = fetch(
        f"""
        SELECT c.relname, CASE c.relkind WHEN 'i' THEN 'index' WHEN 'm' THEN 'view' ELSE 'table' END,
               pg_relation_size(c.oid)
        FROM pg_class c JOIN pg_namespace n ON n.oid = c.relnamespace
        WHERE c.relkind IN ('r', 'm', 'i') AND {USER_SCHEMAS}
        ORDER BY pg_relation_size(c.oid) DESC LIMIT %s
        """,
        [TOP],
    )
    return Check(
        name="Database size",
        status=PASS,
        value=size_text(database_bytes()),
        threshold="for information",
        columns=("relation", "kind", "size"),
        rows=[(name, kind, size_text(size)) for name, kind, size in rows],
    )


def table_sizes() -> Check:
    """Table and index sizes."""
    rows = fetch(
        f"""
        SELECT c.relname, c.reltuples::bigint, pg_relation_size(c.oid), pg_indexes_size(c.oid),
               pg_total_relation_size(c.oid)
        FROM pg_class c JOIN pg_namespace n ON n.oid = c.relnamespace
        WHERE c.relkind IN ('r', 'm', 'p') AND {USER_SCHEMAS}
        ORDER BY pg_total_relation_size(c.oid) DESC LIMIT %s
        """,
        [TOP],
    )
    largest = f"{rows[0][0]}: {size_text(rows[0][4])}" if rows else "no tables"
    return Check(
        name="Table and index sizes",
        status=PASS,
        value=largest,
        threshold="for information",
        columns=("table", "rows (estimated)", "table", "indexes", "total"),
        rows=[(t, "—" if _estimate(n) is None else n, size_text(a), size_text(b), size_text(c)) for t, n, a, b, c in rows],
    )


def index_usage() -> Check:
    """Index usage."""
    rows = fetch(
        """
        SELECT s.relname, s.indexrelname, s.idx_scan, pg_relation_size(s.indexrelid)
        FROM pg_stat_user_indexes s ORDER BY s.idx_scan DESC, s.relname LIMIT %s
        """,
        [TOP],
    )
    total = sum(row[2] for row in rows)
    return Check(
        name="Index usage",
        status=PASS,
        value=f"{total:,} scans by the {len(rows)} busiest indexes",
        threshold="for information",
        columns=("table", "index", "scans", "size"),
        rows=[(t, i, scans, size_text(size)) for t, i, scans, size in rows],
    )


def unused_indexes() -> Check:
    """Unused indexes."""
    rows = fetch(
        """
        SELECT s.relname, s.indexrelname, pg_relation_size(s.indexrelid)
        FROM pg_stat_user_indexes s JOIN pg_index x ON x.indexrelid = s.indexrelid
        WHERE s.idx_scan = 0 AND NOT x.indisunique AND NOT x.indisprimary
          AND NOT EXISTS (SELECT 1 FROM pg_constraint k WHERE k.conindid = s.indexrelid)
        ORDER BY pg_relation_size(s.indexrelid) DESC, s.indexrelname
        """
    )
    reset = fetch("SELECT stats_reset FROM pg_stat_database WHERE datname = current_database()")
    reset_at = reset[0][0] if reset else None
    since = f"since statistics were reset ({reset_at:%Y-%m-%d})" if reset_at else "since the server began counting"
    return Check(
        name="Unused indexes",
        status=WARN if rows else PASS,
        value=f"{len(rows)} never scanned",
        threshold="warn when a non-unique index was never scanned",
        columns=("table", "index", "size"),
        rows=[(t, i, size_text(size)) for t, i, size in rows],
        note=f"Counted {since}. An index the planner never uses only slows writes; drop it in a migration.",
    )


def duplicate_indexes() -> Check:
    """Duplicate indexes."""
    # An index is redundant when another valid index of the same kind on the same table starts
    # with the same columns (and operator classes) and has the same predicate; a unique index
    # is only covered by a unique index on exactly its columns. Of two identical ones, the newer
    # is reported. Expression indexes are left out.
    rows = fetch(
        f"""
        WITH idx AS (
            SELECT x.indrelid, x.indexrelid, x.indisunique, x.indisvalid, i.relam,
                   string_to_array(x.indkey::text, ' ')::int2[] AS keys,
                   string_to_array(x.indclass::text, ' ')::oid[] AS classes,
                   pg_get_expr(x.indpred, x.indrelid) AS predicate
            FROM pg_index x
            JOIN pg_class i ON i.oid = x.indexrelid
            JOIN pg_class t ON t.oid = x.indrelid
            JOIN pg_namespace n ON n.oid = t.relnamespace
            WHERE x.indexprs IS NULL AND {USER_SCHEMAS}
        )
        SELECT t.relname, di.relname, ci.relname, pg_relation_size(d.indexrelid)
        FROM idx d
        JOIN idx c ON c.indrelid = d.indrelid AND c.indexrelid <> d.indexrelid
        JOIN pg_class t ON t.oid = d.indrelid
        JOIN pg_class di ON di.oid = d.indexrelid
        JOIN pg_class ci ON ci.oid = c.indexrelid
        WHERE d.relam = c.relam AND d.indisvalid AND c.indisvalid
          AND d.predicate IS NOT DISTINCT FROM c.predicate
          AND cardinality(d.keys) <= cardinality(c.keys)
          AND c.keys[1:cardinality(d.keys)] = d.keys
          AND c.classes[1:cardinality(d.classes)] = d.classes
          AND (NOT d.indisunique OR (c.indisunique AND c.keys = d.keys))
          AND NOT (c.keys = d.keys AND c.indisunique = d.indisunique AND d.indexrelid < c.indexrelid)
        ORDER BY t.relname, di.relname
        """
    )
    return Check(
        name="Duplicate indexes",
        status=WARN if rows else PASS,
        value=f"{len(rows)} redundant",
        threshold="warn when an index is covered by another",
        columns=("table", "index", "covered by", "size"),
        rows=[(t, d, c, size_text(size)) for t, d, c, size in rows],
    )


def invalid_indexes() -> Check:
    """Invalid indexes."""
    rows = fetch(
        f"""
        SELECT t.relname, i.relname, pg_get_indexdef(x.indexrelid)
        FROM pg_index x
        JOIN pg_class i ON i.oid = x.indexrelid
        JOIN pg_class t ON t.oid = x.indrelid
        JOIN pg_namespace n ON n.oid = t.relnamespace
        WHERE NOT x.indisvalid AND {USER_SCHEMAS}
        ORDER BY t.relname, i.relname
        """
    )
    return Check(
        name="Invalid indexes",
        status=FAIL if rows else PASS,
        value=f"{len(rows)} invalid",
        threshold="fail when any index is invalid (a failed CREATE INDEX CONCURRENTLY)",
        columns=("table", "index", "definition"),
        rows=rows,
        note="An invalid index is maintained on every write but never used: drop it and build it again.",
    )


def sequential_scans() -> Check:
    """Tables read mostly by sequential scans."""
    rows = fetch(
        """
        SELECT relname, seq_scan, coalesce(idx_scan, 0), n_live_tup,
               round(100.0 * coalesce(idx_scan, 0) / (seq_scan + coalesce(idx_scan, 0)), 1)
        FROM pg_stat_user_tables
        WHERE seq_scan > 0 AND n_live_tup >= %s
          AND coalesce(idx_scan, 0) * 100 < %s * (seq_scan + coalesce(idx_scan, 0))
        ORDER BY n_live_tup DESC
        """,
        [SEQ_SCAN_MIN_ROWS, SEQ_SCAN_INDEX_PERCENT],
    )
    return Check(
        name="Sequential scans",
        status=WARN if rows else PASS,
        value=f"{len(rows)} tables",
        threshold=f"warn when a table of {SEQ_SCAN_MIN_ROWS:,}+ rows is read by an index "
        f"in under {SEQ_SCAN_INDEX_PERCENT}% of scans",
        columns=("table", "sequential scans", "index scans", "rows", "% by index"),
        rows=rows,
    )


def _hit_rate_check(name: str, view: str, hit: str, read: str) -> Check:
    hits, reads = fetch(f"SELECT coalesce(sum({hit}), 0), coalesce(sum({read}), 0) FROM {view}")[0]
    rate = hits / (hits + reads) if hits + reads else None
    return Check(
        name=name,
        status=level(rate, warn=CACHE_HIT_WARN, fail=CACHE_HIT_FAIL, higher_is_worse=False),
        value="no reads yet" if rate is None else f"{rate:.2%}",
        threshold=f"warn below {CACHE_HIT_WARN:.0%}, fail below {CACHE_HIT_FAIL:.0%}",
        columns=("blocks from memory", "blocks from disk"),
        rows=[(int(hits), int(reads))],
    )


def table_cache_hit_rate() -> Check:
    """Table cache hit rate."""
    return _hit_rate_check("Table cache hit rate", "pg_statio_user_tables", "heap_blks_hit", "heap_blks_read")


def index_cache_hit_rate() -> Check:
    """Index cache hit rate."""
    return _hit_rate_check("Index cache hit rate", "pg_statio_user_indexes", "idx_blks_hit", "idx_blks_read")


CHECKS = [
    database_size,
    table_sizes,
    index_usage,
    unused_indexes,
    duplicate_indexes,
    invalid_indexes,
    sequential_scans,
    table_cache_hit_rate,
    index_cache_hit_rate,
]
