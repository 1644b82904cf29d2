"""Database plumbing shared by every app: slow-query logging, transient-error retries,
per-key locks and the alias for reads that tolerate replica lag."""

from __future__ import annotations

import functools
import hashlib
import logging
import random
import time
from collections.abc import Callable
from typing import ParamSpec, TypeVar

from django.conf import settings
from django.db import DEFAULT_DB_ALIAS, InterfaceError, OperationalError, connections

logger = logging.getLogger(__name__)

P = ParamSpec("P")
R = TypeVar("R")

# SQLSTATE classes that mean "the same transaction may well succeed if run again".
# serialization_failure, deadlock_detected, and the server dropping or refusing the session.
_RETRYABLE_SQLSTATES = {"40001", "40P01", "57P01", "57P02", "57P03"}
_RETRYABLE_SQLSTATE_CLASSES = {"08"}  # connection exceptions
_SQLITE_BUSY_TEXT = ("database is locked", "database is busy")


class SlowQueryLogger:
    """An execute wrapper that logs statements slower than ``SLOW_QUERY_MS``.

    Django's SQL still has its ``%s`` placeholders at this point, so the logged text
    carries no parameter values (no member data in logs).
    """

    def __init__(self, alias: str) -> None:
        self.alias = alias

    def __call__(self, execute, sql, params, many, context):
        start = time.perf_counter()
        try:
            return execute(sql, params, many, context)
        finally:
            elapsed_ms = (time.perf_counter() - start) * 1000
            if elapsed_ms >= settings.SLOW_QUERY_MS:
                logger.warning(
                    "slow query: %.1f ms on %s: %s",
                    elapsed_ms,
                    self.alias,
                    sql if len(sql) <= 2000 else sql[:2000] + "…",
                    extra={"duration_ms": round(elapsed_ms, 1), "db_alias": self.alias},
                )


def install_slow_query_logger(sender, connection, **kwargs) -> None:
    """``connection_created`` receiver: add the wrapper once per connection wrapper."""
    if not any(isinstance(w, SlowQueryLogger) for w in connection.execute_wrappers):
        connection.execute_wrappers.append(SlowQueryLogger(connection.alias))


def is_transient(exc: BaseException) -> bool:
    """True when ``exc`` is a failure that a repeat of the whole transaction may cure."""
    if isinstance(exc, InterfaceError):
        return True
    if not isinstance(exc, OperationalError):
        return False
    cause = exc.__cause__
    sqlstate = getattr(cause, "sqlstate", None)
    if sqlstate:
        return sqlstate in _RETRYABLE_SQLSTATES or sqlstate[:2] in _RETRYABLE_SQLSTATE_CLASSES
    text = str(exc).lower()
    if any(marker in text for marker in _SQLITE_BUSY_TEXT):
        return True
    # psycopg raises OperationalError without a SQLSTATE when the server went away.
    return cause is not None and type(cause).__module__.startswith("psycopg")


def _waited_for_pool(exc: BaseException) -> bool:
    """True when ``exc`` is the pool giving up after ``DB_POOL_TIMEOUT``: the database is away or
    every connection is busy, and waiting the timeout again inside the same request only holds it
    (four attempts would hold a request for four pool timeouts while the database is down)."""
    try:
        from psycopg_pool import PoolTimeout
    except ImportError:  # pragma: no cover - psycopg's pool is a requirement
        return False
    return isinstance(exc.__cause__, PoolTimeout)


def retry_transient(attempts: int = 4, base_delay: float = 0.05, using: str = DEFAULT_DB_ALIAS):
    """Run the decorated function again when it fails with a transient database error.

    Only for services whose whole transaction is safe to repeat. Inside an outer
    ``atomic`` block it does not retry (the outer transaction is already broken and must
    be repeated as a whole by whoever opened it).
    """

    def decorate(func: Callable[P, R]) -> Callable[P, R]:
        @functools.wraps(func)
        def wrapper(*args: P.args, **kwargs: P.kwargs) -> R:
            for attempt in range(1, attempts + 1):
                try:
                    return func(*args, **kwargs)
                except (OperationalError, InterfaceError) as exc:
                    connection = connections[using]
                    if attempt == attempts or connection.in_atomic_block or not is_transient(exc) or _waited_for_pool(exc):
                        raise
                    logger.info("transient database error in %s (attempt %d): %s", func.__qualname__, attempt, exc)
                    # A lost connection must be replaced before the next attempt.
                    connection.close_if_unusable_or_obsolete()
                    if connection.connection is not None and not connection.is_usable():
                        connection.close()
                    time.sleep(base_delay * (2 ** (attempt - 1)) * (1 + random.random()))
            raise AssertionError("unreachable")

        return wrapper

    return decorate


def lock_key(namespace: str, *parts: int) -> int:
    """A stable signed 64-bit key for ``pg_advisory_xact_lock`` from a namespace and ids."""
    digest = hashlib.blake2b(f"{namespace}:{':'.join(map(str, parts))}".encode(), digest_size=8).digest()
    return int.from_bytes(digest, "big", signed=True)


def lock_for_transaction(namespace: str, *parts: int, using: str = DEFAULT_DB_ALIAS) -> None:
    """Serialize transactions that touch the same logical key until the transaction ends.

    PostgreSQL takes a transaction-level advisory lock. SQLite needs nothing: its
    transactions start IMMEDIATE, so writers are already serialized.
    """
    connection = connections[using]
    if not connection.in_atomic_block:
        raise RuntimeError("lock_for_transaction() must be called inside transaction.atomic()")
    if connection.vendor == "postgresql":
        with connection.cursor() as cursor:
            cursor.execute("SELECT pg_advisory_xact_lock(%s)", [lock_key(namespace, *parts)])


def lag_tolerant_alias() -> str:
    """The alias for reads that may lag a little (dashboards, leaderboards).

    The replica while it is reachable and within ``REPLICA_MAX_LAG_S``, else the primary
    (config/replicas.py).
    """
    from config.replicas import read_alias

    return read_alias()


def close_pools_before_fork() -> None:
    """Close this process's PostgreSQL connection pools just before it forks.

    django-q2's sentinel uses the database before it forks its workers, pusher and monitor,
    and ``connections.close_all()`` only hands connections back to the pool: children that
    inherit it share its sockets, and their queries interleave on one session. Each child
    opens its own pool instead. (Registered with ``os.register_at_fork`` by the ops app.)
    """
    for alias in connections:
        conn = connections[alias]
        if alias in getattr(type(conn), "_connection_pools", {}):
            conn.close()
            conn.close_pool()  # type: ignore[attr-defined]  # the PostgreSQL backend's, checked just above
