"""The read replica: reads that tolerate lag go to it while it is fit; everything else to the primary.

Fit means reachable, in recovery and at most ``REPLICA_MAX_LAG_S`` behind. Each process keeps
one verdict and checks it again at most every ``REPLICA_CHECK_INTERVAL_S``, in a background
thread, on a connection of its own with a short connect timeout: no request waits on the check,
and the replica's own connections are outside the pool, so none waits for a pool either.

Lag is measured on the replica against the primary's current WAL position: a replica that has
replayed everything the primary had written is 0 s behind, however long the primary was idle
(``now() - pg_last_xact_replay_timestamp()`` alone grows on an idle primary). One that is still
behind after a short recheck is as far behind as the age of the last transaction it replayed.

What stays on the primary: every write (the router sends an instance read from the replica back
to the primary to be saved), anything inside a transaction, and every read of a request from a
browser that wrote in the last ``REPLICA_MAX_LAG_S`` (a cookie), or of an API token that did
(a key in the shared cache, since scripts keep no cookies), so a list shown after a save shows
the save. A read-only request that fails because the replica went away meanwhile is
answered again from the primary.
"""

from __future__ import annotations

import contextvars
import functools
import hashlib
import logging
import os
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass

from django.conf import settings
from django.core.cache import cache
from django.db import DEFAULT_DB_ALIAS, InterfaceError, OperationalError, connections
from django.http import HttpRequest, HttpResponse

from config.checks import PASS, WARN

logger = logging.getLogger(__name__)

REPLICA = "replica"
PIN_COOKIE = "guildhall_primary"  # set after a write: this browser reads from the primary a while
SAFE_METHODS = frozenset({"GET", "HEAD", "OPTIONS"})
RECHECKS, RECHECK_PAUSE_S = 4, 0.05  # a replica busy replaying gets 0.2 s to reach the primary's position

_pinned: contextvars.ContextVar[bool] = contextvars.ContextVar("replica_pinned", default=False)


@dataclass(frozen=True)
class ReplicaHealth:
    usable: bool
    reason: str  # why reads are on the primary ("" when usable); shown without login by /health/ready
    lag_s: float | None
    checked_at: float  # time.monotonic()
    detail: str = ""  # for the log only: the driver's message names the replica's host and port


_health: ReplicaHealth | None = None
_probe_lock = threading.Lock()


def _target(alias: str) -> tuple:
    config = connections[alias].settings_dict
    return tuple(config.get(key) for key in ("ENGINE", "HOST", "PORT", "NAME"))


def replica_configured() -> bool:
    """True when DATABASE_REPLICA_URL names a database other than the primary.

    In tests the replica alias mirrors the default database (``TEST: MIRROR``): it is the
    primary then, and reads stay on the default alias, inside the test's transaction.
    """
    return REPLICA in settings.DATABASES and _target(REPLICA) != _target(DEFAULT_DB_ALIAS)


def read_alias() -> str:
    """The alias for a read that tolerates lag: the replica while it is fit, else the primary."""
    if not replica_configured() or _pinned.get() or connections[DEFAULT_DB_ALIAS].in_atomic_block:
        return DEFAULT_DB_ALIAS
    return REPLICA if replica_health().usable else DEFAULT_DB_ALIAS


def replica_health(*, wait: bool = False) -> ReplicaHealth:
    """This process's verdict on the replica.

    A verdict older than the interval is checked again in a background thread, so that no
    request waits on a replica that does not answer; until that check is done the last verdict
    stands (and before the first one, the primary). ``wait`` checks now, in this thread.
    """
    current = _health
    if not wait and current is not None and time.monotonic() - current.checked_at < settings.REPLICA_CHECK_INTERVAL_S:
        return current
    if wait:
        with _probe_lock:
            return _check()
    if _probe_lock.acquire(blocking=False):  # one check at a time; the others go on meanwhile
        threading.Thread(target=_check_in_background, name="replica-check", daemon=True).start()
    return current or ReplicaHealth(False, "the replica's first check is running", None, time.monotonic())


def _check() -> ReplicaHealth:
    global _health
    current, fresh = _health, replica_probe()
    if current is None or fresh.usable != current.usable:
        if fresh.usable:
            logger.info("reads that tolerate lag go to the replica (%.1f s behind)", fresh.lag_s or 0.0)
        else:
            logger.warning("reads moved to the primary: %s%s", fresh.reason, f" ({fresh.detail})" if fresh.detail else "")
    _health = fresh
    return fresh


def _check_in_background() -> None:
    try:
        _check()
    except Exception:  # a check that breaks must not end the process's checks
        logger.exception("the replica check failed")
    finally:
        _probe_lock.release()
        connections[DEFAULT_DB_ALIAS].close()  # this thread's connection back to the pool


def _after_fork_in_child() -> None:
    global _health, _probe_lock
    # A check running in the parent has no thread here: start over with a free lock.
    _health, _probe_lock = None, threading.Lock()


os.register_at_fork(after_in_child=_after_fork_in_child)


def _primary_lsn() -> str | None:
    try:
        with connections[DEFAULT_DB_ALIAS].cursor() as cursor:
            cursor.execute("SELECT pg_current_wal_lsn()::text")
            return cursor.fetchone()[0]
    except (OperationalError, InterfaceError):
        return None  # then the replica is compared with what it has received instead


_STANDING = """
    SELECT pg_is_in_recovery(),
           CASE WHEN NOT pg_is_in_recovery() THEN NULL
                ELSE pg_wal_lsn_diff(coalesce(%s::pg_lsn, pg_last_wal_receive_lsn()), pg_last_wal_replay_lsn()) END,
           EXTRACT(EPOCH FROM now() - pg_last_xact_replay_timestamp())::float8
"""


def replica_probe() -> ReplicaHealth:
    """Measure the replica now: reachable, in recovery, and how far behind the primary."""
    import psycopg

    started = time.monotonic()
    if connections[REPLICA].vendor != "postgresql":
        return ReplicaHealth(True, "", None, started)
    limit = settings.REPLICA_MAX_LAG_S
    primary_lsn = _primary_lsn()
    config = connections[REPLICA].settings_dict
    params = {
        "host": config.get("HOST") or None,
        "port": config.get("PORT") or None,
        "dbname": config["NAME"],
        "user": config.get("USER") or None,
        "password": config.get("PASSWORD") or None,
        "connect_timeout": settings.REPLICA_CONNECT_TIMEOUT_S,
        "application_name": "guildhall-replica-check",
        "options": f"-c statement_timeout={settings.REPLICA_CONNECT_TIMEOUT_S * 1000}",
    }
    try:
        with psycopg.connect(**{k: v for k, v in params.items() if v is not None}, autocommit=True) as conn:
            for attempt in range(RECHECKS + 1):
                if attempt:
                    time.sleep(RECHECK_PAUSE_S)
                in_recovery, behind_bytes, replayed_age = conn.execute(_STANDING, [primary_lsn]).fetchone() or (None, None, None)
                if not in_recovery or behind_bytes is None or behind_bytes <= 0:
                    break
    except psycopg.Error as exc:
        detail = str(exc).strip().splitlines()[0][:300] if str(exc).strip() else type(exc).__name__
        return ReplicaHealth(False, "the replica does not answer", None, started, detail=detail)
    if not in_recovery:
        return ReplicaHealth(False, "the replica is not in recovery (promoted, or not a replica)", None, started)
    if behind_bytes is not None and behind_bytes <= 0:
        return ReplicaHealth(True, "", 0.0, started)
    lag = float(replayed_age) if replayed_age is not None else None
    if lag is None or lag > limit:
        shown = "an unknown time" if lag is None else f"{lag:.1f} s"
        return ReplicaHealth(False, f"the replica is {shown} behind the primary (REPLICA_MAX_LAG_S={limit:g})", lag, started)
    return ReplicaHealth(True, "", lag, started)


def replica_ready() -> tuple[str, float | None, str, str]:
    """/health/ready's reading: warn, with the reason, while reads fall back to the primary."""
    health = replica_health(wait=_health is None)  # a process's first answer is measured, not assumed
    lag = None if health.lag_s is None else round(health.lag_s, 2)
    if not health.usable:
        return WARN, lag, "s", f"reads are served by the primary: {health.reason}"
    return PASS, lag, "s", ""


class ReplicaRouter:
    """Writes never reach the replica; reads of an instance's relations follow it there while it is fit."""

    def db_for_read(self, model, **hints) -> str | None:
        instance = hints.get("instance")
        if instance is not None and instance._state.db == REPLICA:
            return read_alias()
        return None

    def db_for_write(self, model, **hints) -> str | None:
        instance = hints.get("instance")
        if instance is not None and instance._state.db == REPLICA:
            return DEFAULT_DB_ALIAS  # a row read from the replica is saved on the primary
        return None

    def allow_relation(self, obj1, obj2, **hints) -> bool | None:
        if {obj1._state.db, obj2._state.db} <= {DEFAULT_DB_ALIAS, REPLICA}:
            return True  # one database, two servers
        return None

    def allow_migrate(self, db, app_label, **hints) -> bool | None:
        return False if db == REPLICA else None


@functools.cache
def lag_tolerant_changelist() -> type:
    """An admin ChangeList read from the replica; a POST to it (actions, list edits) works on the primary.

    Made on first use, so that processes without the admin (the bot) never import it.
    """
    from django.contrib.admin.views.main import ChangeList

    class LagTolerantChangeList(ChangeList):
        def get_queryset(self, request, exclude_parameters=None):
            if request.method in SAFE_METHODS:
                # The list and its full count both start from the root queryset.
                self.root_queryset = self.root_queryset.using(read_alias())
            return super().get_queryset(request, exclude_parameters)

    return LagTolerantChangeList


class LagTolerantLists:
    """ModelAdmin mixin: the changelist page reads from the replica while it is fit."""

    def get_changelist(self, request, **kwargs):
        return lag_tolerant_changelist()


def _token_pin_key(request: HttpRequest) -> str | None:
    """The shared-cache key that pins an API token's reads to the primary (None: no token, or no replica)."""
    header = request.headers.get("Authorization", "")
    if not header.startswith("Bearer ") or not replica_configured():
        return None
    return "replica-pin:" + hashlib.sha256(header.encode()).hexdigest()[:32]


def _token_pinned(key: str) -> bool:
    try:
        return bool(cache.get(key))
    except Exception:  # the cache is down: the primary is always right
        logger.warning("the cache did not answer; this API token reads from the primary")
        return True


def _token_pin(key: str, seconds: int) -> None:
    try:
        cache.set(key, 1, timeout=seconds)
    except Exception:  # the write committed; only the read-your-write pin is lost
        logger.warning("the cache did not answer; this API token's next reads may not show its write yet")


class ReplicaPinMiddleware:
    """Reads of a browser that just wrote stay on the primary; a GET the replica failed is answered again."""

    def __init__(self, get_response: Callable[[HttpRequest], HttpResponse]) -> None:
        self.get_response = get_response

    def __call__(self, request: HttpRequest) -> HttpResponse:
        writes = request.method not in SAFE_METHODS
        token_pin = _token_pin_key(request)
        pinned = writes or request.COOKIES.get(PIN_COOKIE) == "1" or (token_pin is not None and _token_pinned(token_pin))
        token = _pinned.set(pinned)
        try:
            response = self.get_response(request)
        finally:
            _pinned.reset(token)
        if writes and response.status_code < 500:
            # Long enough for the replica to show the write: it is used only while within the lag limit.
            seconds = int(settings.REPLICA_MAX_LAG_S + settings.REPLICA_CHECK_INTERVAL_S) + 1
            response.set_cookie(PIN_COOKIE, "1", max_age=seconds, httponly=True, samesite="Lax", secure=request.is_secure())
            if token_pin is not None:
                _token_pin(token_pin, seconds)
        return response

    def process_view(self, request, view_func, view_args, view_kwargs):
        request._replica_view = (view_func, view_args, view_kwargs)
        return None

    def process_exception(self, request, exception):
        view = getattr(request, "_replica_view", None)
        retry = isinstance(exception, (OperationalError, InterfaceError)) and request.method in SAFE_METHODS
        if view is None or not retry or not replica_configured() or getattr(request, "_replica_retried", False):
            return None
        if not connections[REPLICA].errors_occurred:
            return None  # the replica was not the one that failed
        if replica_health(wait=True).usable:
            return None  # the replica is fine: the failure was somewhere else
        logger.warning("a read on the replica failed (%s); answering %s from the primary", type(exception).__name__, request.path)
        try:
            connections[REPLICA].close()
        except (OperationalError, InterfaceError):
            pass  # already broken: dropping it is all that is wanted
        request._replica_retried = True
        view_func, view_args, view_kwargs = view
        response = view_func(request, *view_args, **view_kwargs)
        if hasattr(response, "render") and callable(response.render) and not getattr(response, "is_rendered", True):
            response = response.render()
        return response
