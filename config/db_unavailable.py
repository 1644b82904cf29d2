"""While the database is unreachable: answer fast and politely instead of hanging.

``database_probe`` connects afresh (not through the pool) and runs ``SELECT 1`` with a hard
deadline, for /health/ready. ``DatabaseUnavailable`` is a middleware: a request whose view
fails because the database went away gets a 503 page (Retry-After) rather than a 500, and
marks the database suspect; while it is suspect, requests get the 503 at once unless a probe
(one per process per second at most) finds it back. With the database up it costs nothing.
"""

from __future__ import annotations

import concurrent.futures
import logging
import threading
import time

from django.db import DEFAULT_DB_ALIAS, connections
from django.http import HttpResponse, JsonResponse

from config.database import is_transient

logger = logging.getLogger(__name__)

PROBE_DEADLINE_S = 1.5  # /health/ready must say fail within 2 s while the database is down
PROBE_EVERY_S = 1.0
RETRY_AFTER_S = 5
_EXEMPT_PREFIXES = ("/health/", "/static/", "/metrics")

_probes = concurrent.futures.ThreadPoolExecutor(max_workers=2, thread_name_prefix="db-probe")
_lock = threading.Lock()
_state = {"suspect": False, "probed_at": 0.0, "up": True}


def _probe_postgres(alias: str) -> None:
    import psycopg

    params = connections[alias].get_connection_params()
    params["connect_timeout"] = 2  # libpq's least; the deadline below is the real bound
    with psycopg.connect(**params, autocommit=True) as conn:
        conn.execute("SELECT 1").fetchone()


def database_probe(alias: str = DEFAULT_DB_ALIAS, deadline: float = PROBE_DEADLINE_S) -> float:
    """Milliseconds for a fresh connection's ``SELECT 1``; raises when it fails or takes longer than ``deadline``."""
    started = time.perf_counter()
    connection = connections[alias]
    if connection.vendor != "postgresql":
        with connection.cursor() as cursor:  # a local file: nothing to wait for
            cursor.execute("SELECT 1")
            cursor.fetchone()
    else:
        future = _probes.submit(_probe_postgres, alias)
        try:
            future.result(timeout=deadline)
        except concurrent.futures.TimeoutError:
            raise TimeoutError(f"the database did not answer within {deadline} s") from None
    return round((time.perf_counter() - started) * 1000, 2)


def _database_back() -> bool:
    """While suspect: probe at most once a second (others reuse the answer)."""
    now = time.monotonic()
    if now - _state["probed_at"] < PROBE_EVERY_S or not _lock.acquire(blocking=False):
        return bool(_state["up"])
    try:
        try:
            database_probe(deadline=1.0)
            up = True
        except Exception:
            up = False
        _state.update(up=up, probed_at=time.monotonic(), suspect=not up)
        if up:
            logger.warning("the database answers again")
        return up
    finally:
        _lock.release()


def note_failure(exc: BaseException) -> bool:
    """After ``exc``: True (and the database marked suspect) when it says the database went away."""
    if not is_transient(exc):
        return False
    if getattr(exc.__cause__, "sqlstate", None) not in ("40001", "40P01"):  # not a deadlock or serialization failure
        _state.update(suspect=True, up=False, probed_at=0.0)  # the next request probes: a blip costs one probe
        for conn in connections.all(initialized_only=True):
            conn.close_if_unusable_or_obsolete()
    return True


def refuse_while_down() -> None:
    """Raise OperationalError at once while the database is suspect and a probe finds it still away."""
    if _state["suspect"] and not _database_back():
        import psycopg
        from django.db import OperationalError

        reason = "the database is unreachable (it failed a moment ago and a probe finds it still away)"
        raise OperationalError(reason) from psycopg.OperationalError(reason)


def unavailable_response(request) -> HttpResponse:
    text = "Guildhall can't reach its database right now. Nothing was lost; try again in a few seconds."
    if request.path.startswith("/api/"):
        response: HttpResponse = JsonResponse({"detail": text}, status=503)
    else:
        page = f"<!doctype html><title>Back in a moment</title><h1>Back in a moment</h1><p>{text}</p>"
        response = HttpResponse(page, status=503, content_type="text/html; charset=utf-8")
    response["Retry-After"] = str(RETRY_AFTER_S)
    return response


class DatabaseUnavailable:
    def __init__(self, get_response) -> None:
        self.get_response = get_response

    def __call__(self, request):
        if _state["suspect"] and not request.path.startswith(_EXEMPT_PREFIXES) and not _database_back():
            return unavailable_response(request)
        return self.get_response(request)

    def process_exception(self, request, exception):
        if not note_failure(exception):
            return None
        logger.warning("database unavailable during %s %s: %s", request.method, request.path, exception)
        return unavailable_response(request)
