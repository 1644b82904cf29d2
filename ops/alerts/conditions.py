"""The alert conditions: each reads the present and says whether it is wrong now, and what it saw.

A condition returns ``(active, detail)``; the detail is what the admins read in Discord and
in the mail. Thresholds are settings (the "# --- Alerts ---" block), read at each evaluation.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from datetime import datetime

from django.conf import settings

from config.checks import FAIL
from ops.alerts import readings

Verdict = tuple[bool, str]


@dataclass(frozen=True)
class Condition:
    name: str
    title: str
    check: Callable[[datetime], Verdict]


def backup_stale(now: datetime) -> Verdict:
    limit = settings.ALERT_BACKUP_MAX_AGE_HOURS
    age = readings.backup_newest_age_seconds(now)
    if age is None:
        return True, "There is no backup at all."
    hours = age / 3600
    return hours > limit, f"The newest backup is {hours:.1f} h old (limit {limit} h)."


def backup_failed(now: datetime) -> Verdict:
    failure = readings.backup_last_failure()
    if failure is None:
        return False, "The last scheduled backups succeeded."
    which = "point-in-time recovery backup" if failure.task.startswith("ops.pitr.") else "scheduled backup"
    return True, f"The {which} failed at {failure.at:%Y-%m-%d %H:%M} UTC: {failure.reason}"


def drill_failed(now: datetime) -> Verdict:
    failed = [r for r in readings.drills_latest() if not r.passed]
    if not failed:
        return False, "The latest restore drills passed."
    return True, " ".join(
        f"The {r.get_source_display()} drill of {r.backup or '-'} failed at {r.started_at:%Y-%m-%d %H:%M} UTC: {r.error}"
        for r in failed
    )


def wal_archive_stalled(now: datetime) -> Verdict:
    return archive_verdict(readings.archiver_state())


def archive_verdict(state: readings.ArchiverState | None) -> Verdict:
    """Stalled: the newest attempt failed, or nothing was archived for ALERT_ARCHIVE_MAX_AGE_SECONDS while archiving is on."""
    if state is None or not state.on:
        return False, "WAL archiving is off."
    if state.failing:
        return True, (
            f"WAL archiving is failing: {state.failed_count} failed attempts, the last for {state.last_failed_wal} at "
            f"{state.last_failed_at:%H:%M:%S} UTC; last archived: {state.last_archived_wal or 'none'}."
        )
    limit = settings.ALERT_ARCHIVE_MAX_AGE_SECONDS
    age = state.archive_age_seconds()
    if age is not None and age > limit:
        return True, f"No WAL segment archived for {age / 60:.0f} min (limit {limit / 60:.0f} min)."
    return False, f"Last archived {state.last_archived_wal or 'nothing yet'}."


def disk_low(now: datetime) -> Verdict:
    limit = settings.ALERT_DISK_FREE_PERCENT
    free = readings.disk_free_percent()
    low = {label: percent for label, percent in free.items() if percent < limit}
    shown = ", ".join(f"{label} disk {percent:.1f}% free" for label, percent in (low or free).items())
    return bool(low), f"{shown} (limit {limit:g}%)."


def replica_lag(now: datetime) -> Verdict:
    limit = settings.ALERT_REPLICA_LAG_SECONDS
    lag = readings.replica_lag_seconds()
    if lag is None:
        return False, "No replica."
    return lag > limit, f"Replica lag {lag:.0f} s (limit {limit} s)."


_pool_wait_seen: dict[str, int] = {}  # requests_wait_ms at the previous evaluation, per alias (this process)


def pool_waits(now: datetime) -> Verdict:
    stats = readings.pool_stats()
    if stats is None:
        return False, "No connection pool."
    waiting = stats.get("requests_waiting", 0)
    total_ms = stats.get("requests_wait_ms", 0)
    waited = total_ms - _pool_wait_seen.get("default", 0)
    _pool_wait_seen["default"] = total_ms
    limit = settings.ALERT_POOL_WAIT_MS
    active = waiting > 0 or (waited > limit)
    return active, (
        f"Database pool: {waiting} requests waiting now, {waited} ms spent waiting for a connection since the last check "
        f"(limit {limit} ms); raise DB_POOL_MAX or put PgBouncer in front."
    )


def sweep_slow(now: datetime) -> Verdict:
    limit = settings.ALERT_SWEEP_P99_SECONDS
    p99 = readings.sweep_latency_p99_ms(now)
    if p99 is None:
        return False, "No sweep latency in the last hour."
    return p99 / 1000 > limit, f"Sweep latency p99 {p99 / 1000:.1f} s over the last hour (limit {limit:g} s)."


def shard_silent(now: datetime) -> Verdict:
    limit = settings.ALERT_HEARTBEAT_SECONDS
    silent = {shard: age for shard, age in readings.heartbeat_ages(now).items() if age > limit}
    if not silent:
        return False, "Every bot shard sends heartbeats."
    shown = ", ".join(f"shard {shard} ({age:.0f} s)" for shard, age in sorted(silent.items()))
    return True, f"No heartbeat for over {limit} s from {shown}."


def tasks_failed(now: datetime) -> Verdict:
    count = readings.failed_tasks_recent(now)
    return count >= settings.ALERT_FAILED_TASKS, f"{count} worker task(s) failed in the last hour."


def ready_failing(now: datetime) -> Verdict:
    from ops.status.ready import readiness

    body = readiness()
    failing = sorted(name for name, (entry,) in body["checks"].items() if entry["status"] == FAIL)
    if not failing:
        return False, "/health/ready passes."
    return True, "/health/ready fails: " + ", ".join(
        f"{name} ({body['checks'][name][0].get('output', 'failed')})" for name in failing
    )


CONDITIONS: tuple[Condition, ...] = (
    Condition("backup_stale", "Backup missing or old", backup_stale),
    Condition("backup_failed", "Backup failed", backup_failed),
    Condition("drill_failed", "Restore drill failed", drill_failed),
    Condition("wal_archive_stalled", "WAL archiving stalled", wal_archive_stalled),
    Condition("disk_low", "Disk nearly full", disk_low),
    Condition("replica_lag", "Replica lagging", replica_lag),
    Condition("pool_waits", "Database pool waits", pool_waits),
    Condition("sweep_slow", "Timer sweeps slow", sweep_slow),
    Condition("shard_silent", "Bot shard silent", shard_silent),
    Condition("tasks_failed", "Worker tasks failed", tasks_failed),
    Condition("ready_failing", "/health/ready failing", ready_failing),
)
TITLES = {condition.name: condition.title for condition in CONDITIONS}
