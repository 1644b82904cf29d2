"""The recurring jobs of the worker, registered by ``manage.py setup_schedules``."""

from __future__ import annotations

from dataclasses import dataclass

from django.conf import settings


@dataclass(frozen=True)
class ScheduleSpec:
    name: str
    func: str
    minutes: int


SCHEDULES: tuple[ScheduleSpec, ...] = (
    # The timer engine is a relay of runs, each queueing the next (bots.sweeper.relay); this
    # schedule is its watchdog: a run it starts ends at once unless no run holds the baton.
    ScheduleSpec(name="guildhall.timers.sweep", func="bots.tasks.sweep_timers", minutes=1),
    # Bulk timer jobs run as tasks queued when they start; this picks up a job whose worker died.
    ScheduleSpec(name="guildhall.timers.bulk", func="bots.bulk.bulk_jobs_resume", minutes=1),
    ScheduleSpec(name="guildhall.ops.health_snapshot", func="ops.dbhealth.tasks.health_snapshot", minutes=1440),
    ScheduleSpec(name="guildhall.ops.backup_daily", func="ops.backups.tasks.backup_scheduled", minutes=1440),
    ScheduleSpec(name="guildhall.ops.retention_daily", func="ops.retention.tasks.retention_scheduled", minutes=1440),
    # Daily, and the drill runs when BACKUP_DRILL_DAYS have passed since the last one (q2's minutes
    # field is a smallint: a 30-day interval does not fit in it on PostgreSQL).
    ScheduleSpec(name="guildhall.ops.backup_drill", func="ops.backups.drill.drill_scheduled", minutes=1440),
    ScheduleSpec(name="guildhall.ops.alerts", func="ops.alerts.tasks.alerts_evaluate_scheduled", minutes=1),
    # Hourly, so a window loses its oldest day within the hour after midnight UTC (each day once).
    ScheduleSpec(name="guildhall.cookies.windows_roll", func="commands.tasks.cookie_windows_roll_scheduled", minutes=60),
)

PITR_BACKUP_SCHEDULE = "guildhall.ops.pitr_backup"


def schedules_configured() -> tuple[ScheduleSpec, ...]:
    """SCHEDULES plus the jobs of optional features that are configured, read when setup_schedules runs."""
    extra: list[ScheduleSpec] = []
    # Point-in-time recovery (pgBackRest): one job, a differential each run and a full one weekly.
    if settings.PITR_PGBACKREST_STANZA:
        minutes = settings.PITR_PGBACKREST_DIFF_HOURS * 60
        extra.append(ScheduleSpec(name=PITR_BACKUP_SCHEDULE, func="ops.pitr.tasks.pitr_backup_scheduled", minutes=minutes))
    return SCHEDULES + tuple(extra)
