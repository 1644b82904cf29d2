"""/health/ready: is this instance fit to serve? (IETF "Health Check Response Format for HTTP APIs").

Every check is cheap and timed; a check that raises is a failure whose reason is logged, not
shown (the endpoint is served without login). warn still answers 200; fail answers 503.
"""

from __future__ import annotations

import logging
import secrets
import shutil
import time
from collections.abc import Callable
from datetime import UTC, datetime

from django.conf import settings
from django.core.cache import cache
from django.http import JsonResponse
from django.views.decorators.cache import never_cache
from django.views.decorators.http import require_GET

from config.checks import FAIL, PASS, WARN, level, worst
from config.db_unavailable import database_probe
from config.replicas import replica_configured, replica_ready
from ops.status import selectors

logger = logging.getLogger(__name__)

# (status, observedValue, observedUnit, output)
Reading = tuple[str, float | int | None, str, str]


def database_ready() -> Reading:
    # A fresh connection with a hard deadline, not the pool: a pool waits DB_POOL_TIMEOUT for a
    # connection, and while the database is down this must say fail within 2 s.
    return PASS, database_probe(), "ms", ""


def cache_ready() -> Reading:
    started = time.perf_counter()
    key, token = f"ops:ready:{secrets.token_hex(8)}", secrets.token_hex(8)
    cache.set(key, token, timeout=10)
    echoed = cache.get(key)
    cache.delete(key)
    elapsed = round((time.perf_counter() - started) * 1000, 2)
    if echoed != token:
        return FAIL, elapsed, "ms", "the cache did not return what was set"
    return PASS, elapsed, "ms", ""


def q2_ready() -> Reading:
    clusters = len(selectors.q2_clusters())
    if not clusters:
        return WARN, 0, "clusters", "no q2 cluster reported: worker not running"
    return PASS, clusters, "clusters", ""


def migrations_ready() -> Reading:
    pending = len(selectors.migrations_pending())
    if pending:
        return FAIL, pending, "migrations", f"{pending} pending: run manage.py migrate"
    return PASS, 0, "migrations", ""


def bot_ready() -> Reading:
    shards = selectors.shards_state()
    if not shards:
        return WARN, None, "s", "no bot shard has sent a heartbeat: bot not running"
    age = min(shard.age_seconds for shard in shards)
    stale = selectors.HEARTBEAT_STALE_SECONDS
    if age > stale:
        return WARN, round(age, 1), "s", f"last heartbeat over {stale} s ago: bot not running"
    # One silent shard leaves its guilds unanswered while the others look healthy.
    count = max(shards, key=lambda shard: shard.heartbeat.last_seen).heartbeat.shard_count
    silent = {shard.heartbeat.shard_id for shard in shards if not shard.running and shard.heartbeat.shard_id < count}
    down = sorted(silent | set(selectors.shards_missing(shards)))
    if down:
        named = ", ".join(str(shard_id) for shard_id in down)
        if len(down) == 1:
            return WARN, round(age, 1), "s", f"shard {named} of {count} not running: its guilds go unanswered"
        return WARN, round(age, 1), "s", f"shards {named} of {count} not running: their guilds go unanswered"
    return PASS, round(age, 1), "s", ""


def disk_ready() -> Reading:
    usage = shutil.disk_usage(settings.DATA_DIR)
    free = round(usage.free / usage.total * 100, 2) if usage.total else 0.0
    status = level(free, warn=settings.HEALTH_DISK_WARN_PERCENT, fail=settings.HEALTH_DISK_FAIL_PERCENT, higher_is_worse=False)
    return status, free, "percent", "" if status == PASS else f"{free}% free under the data directory"


def alerts_ready() -> Reading:
    from ops.alerts.selectors import alerts_firing

    names = list(alerts_firing().values_list("name", flat=True))
    if not names:
        return PASS, 0, "alerts", ""
    return WARN, len(names), "alerts", "firing: " + ", ".join(names)


def _alerts_firing_any() -> bool:
    from ops.alerts.selectors import alerts_firing

    try:
        return alerts_firing().exists()
    except Exception:  # the database check reports why; the alerts check then says it could not read
        return True


def _checks() -> list[tuple[str, str, Callable[[], Reading]]]:
    checks = [
        ("database:responseTime", "datastore", database_ready),
        ("cache:responseTime", "datastore", cache_ready),
        ("q2:clusters", "component", q2_ready),
        ("migrations:pending", "datastore", migrations_ready),
    ]
    if settings.DISCORD_TOKEN:
        checks.append(("bot:heartbeatAge", "component", bot_ready))
    checks.append(("disk:free", "system", disk_ready))
    if replica_configured():  # DATABASE_REPLICA_URL: warns while reads fall back to the primary
        checks.append(("replica:lag", "datastore", replica_ready))
    if _alerts_firing_any():  # listed while an alert fires (ops.alerts), as a warning naming them
        checks.append(("alerts:firing", "component", alerts_ready))
    return checks


def _checks_while_database_answers(results: dict[str, list[dict]]):
    """The database check first; once it failed, only the checks that don't touch the database
    (each of the others would wait for the pool, and the answer must come within 2 s)."""
    yield "database:responseTime", "datastore", database_ready
    if results["database:responseTime"][0]["status"] == FAIL:
        yield "cache:responseTime", "datastore", cache_ready
        yield "disk:free", "system", disk_ready
        return
    yield from (entry for entry in _checks() if entry[2] is not database_ready)


def readiness() -> dict:
    """Run every check and build the health+json body."""
    results: dict[str, list[dict]] = {}
    for name, kind, check in _checks_while_database_answers(results):
        started = time.perf_counter()
        try:
            status, value, unit, output = check()
        except Exception as exc:  # a broken dependency is a failed check, not a 500
            logger.warning("readiness check %s failed", name, exc_info=True)
            status, value, unit, output = FAIL, None, "", f"{type(exc).__name__}"
        entry = {
            "componentType": kind,
            "status": status,
            "observedValue": value,
            "observedUnit": unit,
            "time": datetime.now(UTC).isoformat(timespec="seconds"),
            "durationMs": round((time.perf_counter() - started) * 1000, 2),
        }
        if output:
            entry["output"] = output
        results[name] = [entry]
    status = worst(entry[0]["status"] for entry in results.values())
    return {"status": status, "description": "Guildhall readiness", "checks": results}


@never_cache
@require_GET
def ready(request):
    """Readiness for load balancers and orchestrators: 200 on pass or warn, 503 on fail."""
    body = readiness()
    return JsonResponse(body, status=503 if body["status"] == FAIL else 200, content_type="application/health+json")


def metrics_access(view):
    """/metrics for Prometheus (``Authorization: Bearer $METRICS_TOKEN``) or a staff session."""
    import hmac

    from django.http import HttpResponse

    def guarded(request, *args, **kwargs):
        token = settings.METRICS_TOKEN
        header = request.headers.get("Authorization", "")
        if token and header.startswith("Bearer ") and hmac.compare_digest(header[7:].strip(), token):
            return view(request, *args, **kwargs)
        user = getattr(request, "user", None)
        if user is not None and user.is_active and user.is_staff:
            return view(request, *args, **kwargs)
        response = HttpResponse("Send Authorization: Bearer <METRICS_TOKEN>.\n", status=401, content_type="text/plain")
        response["WWW-Authenticate"] = 'Bearer realm="metrics"'
        return response

    return guarded
