"""The /metrics gauges behind deploy/prometheus/alerts.yml: the same readings the built-in alerts use.

A collector of its own (registered beside the timers' one), each source read once per scrape.
A reading that is not measurable here (SQLite has no WAL archiver, no replica, no pool) is
left out, as the other gauges are, so a rule never fires on a made-up zero; a reading that
fails is logged and left out without spoiling the rest.
"""

from __future__ import annotations

import logging
from collections.abc import Callable, Iterator

from django.utils import timezone
from prometheus_client.core import GaugeMetricFamily
from prometheus_client.registry import Collector

from ops.alerts import readings

logger = logging.getLogger(__name__)
Samples = list[tuple[list[str], float]]


def _families() -> dict[str, GaugeMetricFamily]:
    g = GaugeMetricFamily
    return {
        "backup_newest": g("guildhall_backup_newest_age_seconds", "Age of the newest backup in the catalog (off-site included)."),
        "backup_failed": g("guildhall_backup_last_failed", "1 when the latest scheduled backup failed, else 0."),
        "drill_passed": g(
            "guildhall_backup_drill_passed", "Latest restore drill per source: 1 passed, 0 failed.", labels=["source"]
        ),
        "drill_age": g(
            "guildhall_backup_drill_age_seconds", "Seconds since the latest restore drill per source.", labels=["source"]
        ),
        "archive_age": g(
            "guildhall_wal_archive_age_seconds", "Seconds since PostgreSQL last archived a WAL segment (archive on)."
        ),
        "archive_failing": g("guildhall_wal_archive_failing", "1 when the newest WAL archive attempt failed (archive on)."),
        "disk_free": g("guildhall_disk_free_percent", "Free space of the data and backup disks, in percent.", labels=["disk"]),
        "replica_lag": g("guildhall_replica_lag_seconds", "The worst replica's replay lag."),
        "pool_waiting": g("guildhall_db_pool_requests_waiting", "Requests waiting for a pooled connection (this process)."),
        "pool_wait_ms": g(
            "guildhall_db_pool_requests_wait_ms", "Milliseconds spent waiting for a pooled connection (this process)."
        ),
        "sweep_p99": g("guildhall_sweep_latency_p99_ms", "p99 of the sweep runs' worst latency over the last hour."),
        "heartbeat_age": g(
            "guildhall_shard_heartbeat_age_seconds", "Seconds since each bot shard's last heartbeat.", labels=["shard"]
        ),
        "tasks_failed": g("guildhall_tasks_failed_last_hour", "Worker (q2) tasks that failed in the last hour."),
        "ready_failing": g("guildhall_ready_checks_failing", "/health/ready checks failing now (0 when it passes or warns)."),
        "alerts_firing": g("guildhall_alert_firing", "1 for each built-in alert firing now.", labels=["alert"]),
    }


def _one(value: float | None) -> Samples:
    return [] if value is None else [([], float(value))]


def _backup() -> dict[str, Samples]:
    return {
        "backup_newest": _one(readings.backup_newest_age_seconds()),
        "backup_failed": _one(int(readings.backup_last_failure() is not None)),
    }


def _drills() -> dict[str, Samples]:
    now, latest = timezone.now(), readings.drills_latest()
    return {
        "drill_passed": [([r.source], float(r.passed)) for r in latest],
        "drill_age": [([r.source], (now - r.started_at).total_seconds()) for r in latest],
    }


def _archive() -> dict[str, Samples]:
    state = readings.archiver_state()
    if state is None or not state.on:
        return {}
    return {"archive_age": _one(state.archive_age_seconds()), "archive_failing": _one(int(state.failing))}


def _pool() -> dict[str, Samples]:
    stats = readings.pool_stats()
    if stats is None:
        return {}
    return {"pool_waiting": _one(stats.get("requests_waiting", 0)), "pool_wait_ms": _one(stats.get("requests_wait_ms", 0))}


def _ready() -> dict[str, Samples]:
    from config.checks import FAIL
    from ops.status.ready import readiness

    return {"ready_failing": _one(sum(entry["status"] == FAIL for (entry,) in readiness()["checks"].values()))}


def _alerts() -> dict[str, Samples]:
    from ops.alerts.selectors import alerts_firing

    return {"alerts_firing": [([name], 1.0) for name in alerts_firing().values_list("name", flat=True)]}


SOURCES: tuple[Callable[[], dict[str, Samples]], ...] = (
    _backup,
    _drills,
    _archive,
    lambda: {"disk_free": [([disk], percent) for disk, percent in readings.disk_free_percent().items()]},
    lambda: {"replica_lag": _one(readings.replica_lag_seconds())},
    _pool,
    lambda: {"sweep_p99": _one(readings.sweep_latency_p99_ms())},
    lambda: {"heartbeat_age": [([str(shard)], age) for shard, age in readings.heartbeat_ages().items()]},
    lambda: {"tasks_failed": _one(readings.failed_tasks_recent())},
    _ready,
    _alerts,
)


class AlertGaugesCollector(Collector):
    """Reads the alert gauges on each scrape."""

    def describe(self) -> Iterator[GaugeMetricFamily]:
        # Declaring the names keeps the registry from calling collect() (and the database) at registration.
        return iter(_families().values())

    def collect(self) -> Iterator[GaugeMetricFamily]:
        families = _families()
        for source in SOURCES:
            try:
                samples = source()
            except Exception:
                logger.warning("alert gauges could not be read (%s)", getattr(source, "__name__", source), exc_info=True)
                continue
            for key, rows in samples.items():
                if not rows:
                    continue
                family = families[key]
                for labels, value in rows:
                    family.add_metric(labels, value)
                yield family


ALERTS_COLLECTOR = AlertGaugesCollector()
