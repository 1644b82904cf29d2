"""PgHero's activity checks: connections, long-running and blocked queries, vacuum, sequence and
transaction-id danger, replication lag, and slow queries from pg_stat_statements."""

from __future__ import annotations

from django.conf import settings
from django.db import DatabaseError, connection, connections, transaction

from config.checks import FAIL, PASS, WARN, level, worst
from ops.dbhealth.checks import Check, fetch

CONNECTIONS_WARN, CONNECTIONS_FAIL = 0.70, 0.90  # of max_connections
LONG_QUERY_WARN_S, LONG_QUERY_FAIL_S = 60, 600
BLOCKED_FAIL_S = 60
DEAD_ROWS_MIN, DEAD_WARN, DEAD_FAIL = 1_000, 0.20, 1.0  # dead rows as a share of live rows
NEVER_ANALYZED_MIN_ROWS = 1_000
SEQUENCE_WARN, SEQUENCE_FAIL = 0.75, 0.90
XID_LIMIT = 2**31 - 1
XID_LEFT_WARN, XID_LEFT_FAIL = 1_000_000_000, 100_000_000
REPLICATION_WARN_S, REPLICATION_FAIL_S = 10, 60
SLOW_QUERY_MS, SLOW_QUERY_CALLS = 20, 100
TYPE_MAX = {"int2": 2**15 - 1, "int4": 2**31 - 1, "int8": 2**63 - 1}
TOP = 20


def connections_by_state() -> Check:
    """Connections."""
    rows = fetch(
        """
        SELECT coalesce(state, 'unknown'), coalesce(nullif(application_name, ''), '—'), count(*)
        FROM pg_stat_activity WHERE backend_type = 'client backend'
        GROUP BY 1, 2 ORDER BY 3 DESC
        """
    )
    maximum = int(fetch("SELECT current_setting('max_connections')")[0][0])
    total = sum(row[2] for row in rows)
    return Check(
        name="Connections",
        status=level(total / maximum, warn=CONNECTIONS_WARN, fail=CONNECTIONS_FAIL),
        value=f"{total} of {maximum}",
        threshold=f"warn at {CONNECTIONS_WARN:.0%} of max_connections, fail at {CONNECTIONS_FAIL:.0%}",
        columns=("state", "application", "connections"),
        rows=rows,
    )


def long_running_queries() -> Check:
    """Long-running queries."""
    rows = fetch(
        """
        SELECT pid, state, round(EXTRACT(EPOCH FROM now() - coalesce(query_start, xact_start))::numeric, 1),
               usename, left(query, 300)
        FROM pg_stat_activity
        WHERE datname = current_database() AND pid <> pg_backend_pid() AND backend_type = 'client backend'
          AND state <> 'idle' AND now() - coalesce(query_start, xact_start) > make_interval(secs => %s)
        ORDER BY 3 DESC LIMIT %s
        """,
        [LONG_QUERY_WARN_S, TOP],
    )
    longest = float(rows[0][2]) if rows else None
    return Check(
        name="Long-running queries",
        status=level(longest, warn=LONG_QUERY_WARN_S, fail=LONG_QUERY_FAIL_S),
        value=f"{len(rows)} running over {LONG_QUERY_WARN_S} s",
        threshold=f"warn over {LONG_QUERY_WARN_S} s, fail over {LONG_QUERY_FAIL_S // 60} min",
        columns=("pid", "state", "seconds", "user", "query"),
        rows=rows,
    )


def blocked_queries() -> Check:
    """Blocked queries."""
    rows = fetch(
        """
        SELECT pid, array_to_string(pg_blocking_pids(pid), ', '),
               round(EXTRACT(EPOCH FROM now() - query_start)::numeric, 1), left(query, 300)
        FROM pg_stat_activity
        WHERE datname = current_database() AND cardinality(pg_blocking_pids(pid)) > 0
        ORDER BY 3 DESC LIMIT %s
        """,
        [TOP],
    )
    longest = float(rows[0][2] or 0) if rows else 0.0
    status = PASS if not rows else FAIL if longest >= BLOCKED_FAIL_S else WARN
    return Check(
        name="Blocked queries",
        status=status,
        value=f"{len(rows)} waiting for a lock",
        threshold=f"warn when any query waits for another's lock, fail when one has waited {BLOCKED_FAIL_S} s",
        columns=("pid", "blocked by", "seconds", "query"),
        rows=rows,
    )


def vacuum_and_analyze() -> Check:
    """Vacuum and analyze."""
    rows = fetch(
        """
        SELECT relname, n_live_tup, n_dead_tup,
               greatest(last_vacuum, last_autovacuum), greatest(last_analyze, last_autoanalyze)
        FROM pg_stat_user_tables
        ORDER BY n_dead_tup DESC, n_live_tup DESC LIMIT %s
        """,
        [TOP],
    )
    statuses, problems = [], 0
    for _name, live, dead, _vacuumed, analyzed in rows:
        ratio = dead / live if live else (float("inf") if dead else 0.0)
        status = level(ratio, warn=DEAD_WARN, fail=DEAD_FAIL) if dead >= DEAD_ROWS_MIN else PASS
        if analyzed is None and live >= NEVER_ANALYZED_MIN_ROWS:
            status = worst([status, WARN])
        statuses.append(status)
        problems += status != PASS
    return Check(
        name="Vacuum and analyze",
        status=worst(statuses),
        value=f"{problems} tables need attention",
        threshold=f"warn when dead rows pass {DEAD_WARN:.0%} of live ones (at {DEAD_ROWS_MIN:,}+) or a "
        f"{NEVER_ANALYZED_MIN_ROWS:,}+ row table was never analyzed; fail when dead rows outnumber live ones",
        columns=("table", "live rows", "dead rows", "last vacuum", "last analyze"),
        rows=[(n, live, dead, _when(v), _when(a)) for n, live, dead, v, a in rows],
    )


def sequence_danger() -> Check:
    """Sequence danger."""
    rows = fetch(
        """
        SELECT s.schemaname || '.' || s.sequencename, s.last_value, s.max_value, col.typname
        FROM pg_sequences s
        LEFT JOIN LATERAL (
            SELECT ty.typname FROM pg_depend d
            JOIN pg_attribute a ON a.attrelid = d.refobjid AND a.attnum = d.refobjsubid
            JOIN pg_type ty ON ty.oid = a.atttypid
            WHERE d.classid = 'pg_class'::regclass AND d.refclassid = 'pg_class'::regclass
              AND d.deptype IN ('a', 'i')
              AND d.objid = (quote_ident(s.schemaname) || '.' || quote_ident(s.sequencename))::regclass
            LIMIT 1
        ) col ON true
        WHERE s.schemaname NOT IN ('pg_catalog', 'information_schema') AND s.last_value IS NOT NULL
        """
    )
    used = []
    for name, last, maximum, column_type in rows:
        # A bigint sequence feeding an int column runs out at the column's limit, not its own.
        limit = min(int(maximum), TYPE_MAX.get(column_type, int(maximum)))
        used.append((name, int(last), limit, last / limit))
    used.sort(key=lambda row: row[3], reverse=True)
    highest = used[0][3] if used else None
    return Check(
        name="Sequence danger",
        status=level(highest, warn=SEQUENCE_WARN, fail=SEQUENCE_FAIL),
        value="no sequences used yet" if highest is None else f"highest {highest:.4%} used",
        threshold=f"warn at {SEQUENCE_WARN:.0%} of the column's range, fail at {SEQUENCE_FAIL:.0%}",
        columns=("sequence", "last value", "limit", "used"),
        rows=[(n, last, limit, f"{share:.4%}") for n, last, limit, share in used[:TOP]],
    )


def transaction_id_danger() -> Check:
    """Transaction ID danger."""
    oldest = int(fetch("SELECT age(datfrozenxid) FROM pg_database WHERE datname = current_database()")[0][0])
    rows = fetch(
        """
        SELECT c.relname, age(c.relfrozenxid)
        FROM pg_class c JOIN pg_namespace n ON n.oid = c.relnamespace
        WHERE c.relkind IN ('r', 'm') AND n.nspname NOT IN ('pg_catalog', 'information_schema')
          AND n.nspname !~ '^pg_toast'
        ORDER BY 2 DESC LIMIT 10
        """
    )
    left = XID_LIMIT - oldest
    return Check(
        name="Transaction ID danger",
        status=level(left, warn=XID_LEFT_WARN, fail=XID_LEFT_FAIL, higher_is_worse=False),
        value=f"{left:,} transactions before wraparound",
        threshold=f"warn under {XID_LEFT_WARN:,} left, fail under {XID_LEFT_FAIL:,}",
        columns=("table", "transactions since frozen", "left"),
        rows=[(n, age, XID_LIMIT - age) for n, age in rows],
    )


_REPLAY_LAG = """
    SELECT CASE WHEN NOT pg_is_in_recovery() THEN NULL
                WHEN pg_last_wal_receive_lsn() = pg_last_wal_replay_lsn() THEN 0
                ELSE EXTRACT(EPOCH FROM now() - pg_last_xact_replay_timestamp()) END
"""


def replication_lag() -> Check:
    """Replication lag."""
    rows: list[tuple] = []
    own = fetch(_REPLAY_LAG)[0][0]
    if own is not None:
        rows.append(("this database (a replica)", "streaming", float(own)))
    for name, client, state, lag in fetch(
        "SELECT application_name, client_addr::text, state, EXTRACT(EPOCH FROM replay_lag) FROM pg_stat_replication"
    ):
        rows.append((f"{name or '—'} ({client or 'local'})", state, float(lag or 0)))
    replica = connections["replica"] if "replica" in settings.DATABASES else None
    # In tests the replica alias mirrors the default database: nothing to measure then.
    if replica is not None and replica.vendor == "postgresql" and _target(replica) != _target(connection):
        with replica.cursor() as cursor:
            cursor.execute(_REPLAY_LAG)
            lag = cursor.fetchone()[0]
        rows.append(("DATABASE_REPLICA_URL", "replica" if lag is not None else "not in recovery", float(lag or 0)))
    if not rows:
        return Check(
            name="Replication lag",
            status=PASS,
            value="no replicas",
            threshold="—",
            note="No replica is streaming from this server and none is configured.",
        )
    worst_lag = max(row[2] for row in rows)
    return Check(
        name="Replication lag",
        status=level(worst_lag, warn=REPLICATION_WARN_S, fail=REPLICATION_FAIL_S),
        value=f"{worst_lag:.1f} s",
        threshold=f"warn over {REPLICATION_WARN_S} s, fail over {REPLICATION_FAIL_S} s",
        columns=("replica", "state", "lag (s)"),
        rows=rows,
    )


def slow_queries() -> Check:
    """Slow queries."""
    name, threshold = "Slow queries", f"warn when a query averages {SLOW_QUERY_MS} ms over {SLOW_QUERY_CALLS}+ calls"
    schema = fetch(
        "SELECT n.nspname FROM pg_extension e JOIN pg_namespace n ON n.oid = e.extnamespace "
        "WHERE e.extname = 'pg_stat_statements'"
    )
    if not schema:
        return Check(
            name=name,
            status=PASS,
            value="not recorded",
            threshold=threshold,
            note="pg_stat_statements is not installed, so slow queries are not recorded. To record them, add "
            "pg_stat_statements to shared_preload_libraries, restart PostgreSQL and run "
            "CREATE EXTENSION pg_stat_statements.",
        )
    mean, total = "mean_exec_time", "total_exec_time"
    if connection.pg_version < 130000:  # type: ignore[attr-defined]  # the PostgreSQL backend's; the names before 13
        mean, total = "mean_time", "total_time"
    try:
        with transaction.atomic():
            rows = fetch(
                f"""
                SELECT left(query, 300), calls, round({mean}::numeric, 1), round({total}::numeric / 1000, 1)
                FROM {connection.ops.quote_name(schema[0][0])}.pg_stat_statements
                WHERE dbid = (SELECT oid FROM pg_database WHERE datname = current_database())
                  AND calls >= %s AND {mean} >= %s
                ORDER BY {total} DESC LIMIT %s
                """,
                [SLOW_QUERY_CALLS, SLOW_QUERY_MS, TOP],
            )
    except DatabaseError as exc:
        return Check(
            name=name,
            status=WARN,
            value="not readable",
            threshold=threshold,
            note=f"pg_stat_statements is installed but cannot be read ({exc}); is it in shared_preload_libraries?",
        )
    return Check(
        name=name,
        status=WARN if rows else PASS,
        value=f"{len(rows)} slow",
        threshold=threshold,
        columns=("query", "calls", "mean ms", "total s"),
        rows=rows,
    )


def _target(conn) -> tuple:
    return tuple(conn.settings_dict.get(key) for key in ("HOST", "PORT", "NAME"))


def _when(moment) -> str:
    return "never" if moment is None else f"{moment:%Y-%m-%d %H:%M}"


CHECKS = [
    connections_by_state,
    long_running_queries,
    blocked_queries,
    vacuum_and_analyze,
    sequence_danger,
    transaction_id_danger,
    replication_lag,
    slow_queries,
]
