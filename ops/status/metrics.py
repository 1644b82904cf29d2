"""Guildhall's own Prometheus gauges, read at scrape time (next to django-prometheus's metrics).

Every reading is an index probe or a catalogue lookup, never a COUNT over a big table, so a
scrape stays cheap however large the ledger grows. A reading that fails is left out of the
scrape (and logged) rather than failing the whole page.
"""

from __future__ import annotations

import logging
import os
import threading
import time
from collections.abc import Iterator

from django.conf import settings
from django.db import connection
from django.db.models import Max
from django.utils import timezone
from prometheus_client.core import REGISTRY, GaugeMetricFamily
from prometheus_client.registry import Collector, CollectorRegistry

from ops.status.metrics_alerts import ALERTS_COLLECTOR

logger = logging.getLogger(__name__)

BACKLOG_CAP = 10_000  # the backlog gauge counts at most this many due timers


def _families() -> dict[str, GaugeMetricFamily]:
    return {
        "active": GaugeMetricFamily("guildhall_timers_active", "Timed roles currently running (not paused or ended)."),
        "backlog": GaugeMetricFamily(
            "guildhall_timers_due_backlog", f"Active timers already past expiry (counted up to {BACKLOG_CAP})."
        ),
        "sweep": GaugeMetricFamily(
            "guildhall_sweep_latency_ms", "Latest sweep run: role removed this long after due.", labels=["stat"]
        ),
        "cookies": GaugeMetricFamily("guildhall_cookie_gives_total", "Cookie ledger rows (an estimate)."),
        "backup": GaugeMetricFamily("guildhall_backup_age_seconds", "Age of the newest file in BACKUP_DIR."),
    }


def timers_active() -> int:
    from timers.models import TimedRole, TimerState

    # A walk of the partial index timer_due_expiry (active timers only); the expires_at
    # condition is what lets SQLite pick it over a scan of a whole-table index.
    return TimedRole.objects.filter(state=TimerState.ACTIVE, expires_at__isnull=False).count()


def timers_due_backlog() -> int:
    from timers.selectors import timers_due_expiry

    return timers_due_expiry(now=timezone.now()).order_by()[:BACKLOG_CAP].count()


def sweep_latency() -> dict[str, float]:
    from ops.models import SweepRun

    latest = SweepRun.objects.order_by("-started_at").values("latency_p50_ms", "latency_max_ms").first()
    if latest is None:
        return {}
    readings = {"p50": latest["latency_p50_ms"], "max": latest["latency_max_ms"]}
    return {stat: value for stat, value in readings.items() if value is not None}


def cookie_gives_estimate() -> int:
    from commands.models import CookieLedger

    if connection.vendor == "postgresql":
        with connection.cursor() as cursor:
            cursor.execute("SELECT reltuples::bigint FROM pg_class WHERE oid = to_regclass(%s)", [CookieLedger._meta.db_table])
            row = cursor.fetchone()
        if row and row[0] is not None and row[0] >= 0:
            return int(row[0])
        # Never analysed yet (-1): fall back to the highest id, like SQLite.
    return CookieLedger.objects.aggregate(top=Max("id"))["top"] or 0


def backup_age_seconds() -> float | None:
    """Seconds since the newest file in BACKUP_DIR was written; None when there is none."""
    try:
        with os.scandir(settings.BACKUP_DIR) as entries:
            newest = max((entry.stat().st_mtime for entry in entries if entry.is_file()), default=None)
    except FileNotFoundError:
        return None
    return None if newest is None else max(time.time() - newest, 0.0)


class GuildhallCollector(Collector):
    """Reads the gauges on each scrape."""

    def describe(self) -> Iterator[GaugeMetricFamily]:
        # Declaring the names keeps the registry from calling collect() (and the database) at registration.
        return iter(_families().values())

    def collect(self) -> Iterator[GaugeMetricFamily]:
        families = _families()
        readings = (
            ("active", timers_active),
            ("backlog", timers_due_backlog),
            ("sweep", sweep_latency),
            ("cookies", cookie_gives_estimate),
            ("backup", backup_age_seconds),
        )
        for key, read in readings:
            family = families[key]
            try:
                value = read()
            except Exception:
                logger.warning("metric %s could not be read", family.name, exc_info=True)
                continue
            if value is None:  # e.g. no backup yet: leave the gauge out rather than report 0
                continue
            if isinstance(value, dict):
                for label, reading in value.items():
                    family.add_metric([label], reading)
            else:
                family.add_metric([], value)
            yield family


COLLECTOR = GuildhallCollector()
_lock = threading.Lock()
_registered: set[int] = set()


def metrics_collector_register(registry: CollectorRegistry = REGISTRY) -> None:
    """Register the collector once per registry (url modules may be imported more than once)."""
    with _lock:
        if id(registry) in _registered:
            return
        for collector in (COLLECTOR, ALERTS_COLLECTOR):  # the second: the gauges behind deploy/prometheus/alerts.yml
            try:
                registry.register(collector)
            except ValueError:  # already there, e.g. after a module reload
                pass
        _registered.add(id(registry))
