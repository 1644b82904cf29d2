"""The measurements behind the alerts and the matching /metrics gauges (one reading, two consumers).

Each reading is cheap (an index probe, a catalogue view, a stat of the disk) because the
alerts run every minute and Prometheus scrapes as often; None means "not measurable here"
(no backup yet, SQLite has no WAL archiver, no replica), which never fires an alert.
"""

from __future__ import annotations

import os
import shutil
from dataclasses import dataclass
from datetime import datetime, timedelta

from django.conf import settings
from django.db import DEFAULT_DB_ALIAS, connections
from django.utils import timezone

from ops.models import DrillResult, ShardHeartbeat, SweepRun

# The scheduled backups: the daily snapshot and, when configured, the pgBackRest job.
BACKUP_TASKS = ("ops.backups.tasks.backup_scheduled", "ops.pitr.tasks.pitr_backup_scheduled")
SWEEP_WINDOW = timedelta(hours=1)  # sweep p99 over the runs of the last hour
FAILED_TASKS_WINDOW = timedelta(hours=1)


def backup_newest_age_seconds(now: datetime | None = None) -> float | None:
    """Seconds since the newest backup in the catalog was made (None: there is no backup)."""
    from ops.backups.catalog import backups_list

    backups = backups_list()
    if not backups:
        return None
    return max(0.0, ((now or timezone.now()) - backups[0].created_at).total_seconds())


@dataclass(frozen=True)
class BackupFailure:
    at: datetime
    reason: str
    task: str


def backup_last_failure() -> BackupFailure | None:
    """The latest failed run among the scheduled backups whose latest run failed (None when each succeeded or never ran)."""
    from django_q.models import Task

    failures = []
    for func in BACKUP_TASKS:
        latest = Task.objects.filter(func=func).order_by("-stopped").values("success", "stopped", "result").first()
        if latest is not None and not latest["success"]:
            failures.append(BackupFailure(at=latest["stopped"], reason=str(latest["result"] or "")[:300], task=func))
    return max(failures, key=lambda failure: failure.at, default=None)


def drills_latest() -> list[DrillResult]:
    """The latest drill result of each source (local, off-site, PITR)."""
    latest = []
    for source in DrillResult.Source.values:
        found = DrillResult.objects.filter(source=source).order_by("-started_at").first()
        if found is not None:
            latest.append(found)
    return latest


@dataclass(frozen=True)
class ArchiverState:
    """pg_stat_archiver with archive_mode: how WAL archiving is doing on a PostgreSQL server."""

    archive_mode: str
    archived_count: int
    last_archived_wal: str
    last_archived_at: datetime | None
    failed_count: int
    last_failed_wal: str
    last_failed_at: datetime | None
    stats_reset: datetime | None
    now: datetime

    @property
    def on(self) -> bool:
        return self.archive_mode in ("on", "always")

    @property
    def failing(self) -> bool:
        """The newest attempt failed: a failure newer than the last success (or no success since the stats reset)."""
        if self.last_failed_at is None:
            return False
        return self.last_archived_at is None or self.last_failed_at > self.last_archived_at

    def archive_age_seconds(self) -> float | None:
        """Seconds since a segment was archived (or since the counters started, when none ever was)."""
        since = self.last_archived_at or self.stats_reset
        return None if since is None else max(0.0, (self.now - since).total_seconds())


def archiver_state(using: str = DEFAULT_DB_ALIAS) -> ArchiverState | None:
    """WAL archiving on ``using`` (None on SQLite)."""
    if connections[using].vendor != "postgresql":
        return None
    with connections[using].cursor() as cursor:
        return archiver_read(cursor)


def archiver_read(cursor) -> ArchiverState:
    """pg_stat_archiver and archive_mode through a DB-API cursor on a PostgreSQL server."""
    cursor.execute(
        "SELECT current_setting('archive_mode'), archived_count, coalesce(last_archived_wal, ''), last_archived_time,"
        " failed_count, coalesce(last_failed_wal, ''), last_failed_time, stats_reset, now() FROM pg_stat_archiver"
    )
    return ArchiverState(*cursor.fetchone())


def disk_free_percent() -> dict[str, float]:
    """Free space, in percent, of the disks under DATA_DIR and BACKUP_DIR (one entry when they are the same disk)."""
    readings: dict[str, float] = {}
    seen: set[int] = set()
    for label, path in (("data", settings.DATA_DIR), ("backups", settings.BACKUP_DIR)):
        target = path
        while not target.exists() and target != target.parent:  # BACKUP_DIR may not be made yet
            target = target.parent
        device = os.stat(target).st_dev
        if device in seen:
            continue
        seen.add(device)
        usage = shutil.disk_usage(target)
        readings[label] = round(usage.free / usage.total * 100, 2) if usage.total else 0.0
    return readings


def replica_lag_seconds() -> float | None:
    """The worst replica's replay lag in seconds, as the Database page reads it (None: no replica, or SQLite)."""
    if connections[DEFAULT_DB_ALIAS].vendor != "postgresql":
        return None
    from ops.dbhealth.postgres_activity import replication_lag

    rows = replication_lag().rows
    return max(float(row[2]) for row in rows) if rows else None


def pool_stats(alias: str = DEFAULT_DB_ALIAS) -> dict[str, int] | None:
    """This process's psycopg pool counters (requests_waiting, requests_wait_ms, …); None without a pool."""
    conn = connections[alias]
    pool = getattr(type(conn), "_connection_pools", {}).get(alias)
    return None if pool is None else dict(pool.get_stats())


def sweep_latency_p99_ms(now: datetime | None = None) -> float | None:
    """The 99th percentile (nearest rank) of the sweep runs' worst latencies over the last hour."""
    since = (now or timezone.now()) - SWEEP_WINDOW
    values = sorted(
        float(value)
        for value in SweepRun.objects.filter(started_at__gte=since, latency_max_ms__isnull=False).values_list(
            "latency_max_ms", flat=True
        )
        if value is not None
    )
    if not values:
        return None
    rank = max(1, -(-99 * len(values) // 100))  # ceil(0.99 n)
    return values[rank - 1]


def heartbeat_ages(now: datetime | None = None) -> dict[int, float]:
    """Seconds since each bot shard's last heartbeat."""
    now = now or timezone.now()
    return {shard: (now - seen).total_seconds() for shard, seen in ShardHeartbeat.objects.values_list("shard_id", "last_seen")}


def failed_tasks_recent(now: datetime | None = None) -> int:
    """q2 tasks that failed in the last hour (django_q's Failure rows)."""
    from django_q.models import Failure

    return Failure.objects.filter(stopped__gte=(now or timezone.now()) - FAILED_TASKS_WINDOW).count()
