"""The bot's one door into the services: run a sync service off the event loop."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any, TypeVar

from asgiref.sync import sync_to_async
from django.db import DEFAULT_DB_ALIAS, close_old_connections, connections, reset_queries

from config.db_unavailable import note_failure, refuse_while_down

T = TypeVar("T")


# All of a process's calls share one thread, so waiting longer than this for a pooled
# connection only ever means the database is away: fail, and let the caller apologise.
POOL_WAIT_S = 3.0
_pool_wait_set = False


def _short_pool_wait() -> None:
    global _pool_wait_set
    if not _pool_wait_set:
        pool = getattr(connections[DEFAULT_DB_ALIAS], "pool", None)  # None without Django's pool (SQLite, PgBouncer)
        if pool is not None:
            pool.timeout = min(pool.timeout, POOL_WAIT_S)
        _pool_wait_set = True


def _fresh(func: Callable[..., T], kwargs: dict[str, Any]) -> T:
    # While the database is known to be away, fail at once (a probe a second tells when it is back).
    refuse_while_down()
    # A long-lived process has no request cycle: do what request_started does for a request, drop
    # broken or expired connections and (with DEBUG on) the query log, which otherwise keeps the
    # SQL of the last 9,000 queries, a directory flush's 500-row INSERTs among them, for good.
    reset_queries()
    close_old_connections()
    _short_pool_wait()
    try:
        return func(**kwargs)
    except Exception as exc:
        note_failure(exc)
        raise


async def call(func: Callable[..., T], /, **kwargs: Any) -> T:
    """Run ``func(**kwargs)`` in Django's sync thread (no ORM in async code)."""
    return await sync_to_async(_fresh, thread_sensitive=True)(func, kwargs)
