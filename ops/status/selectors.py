"""Reads behind the Status page and /health/ready: migrations, q2 clusters, schedules, bot shards, sweeps."""

from __future__ import annotations

import functools
import logging
from dataclasses import dataclass
from datetime import datetime, timedelta

from django.db import connection
from django.db.migrations.executor import MigrationExecutor
from django.db.migrations.loader import MigrationLoader
from django.db.migrations.recorder import MigrationRecorder
from django.db.models import Count, Max, Q
from django.utils import timezone
from django_q.brokers import Broker
from django_q.conf import Conf
from django_q.models import OrmQ, Schedule, Task
from django_q.status import Stat

from ops.models import RetentionRun, ShardHeartbeat, SweepRun
from ops.schedules import SCHEDULES

logger = logging.getLogger(__name__)

HEARTBEAT_STALE_SECONDS = 90  # the bot writes every ~15 s
SWEEP_STALE_SECONDS = 180  # a sweep starts every minute


@dataclass
class MigrationState:
    applied: int
    pending: list[str]


def migrations_state() -> MigrationState:
    """Applied and pending migrations, as ``migrate`` would see them."""
    executor = MigrationExecutor(connection)
    plan = executor.migration_plan(executor.loader.graph.leaf_nodes())
    pending = [f"{migration.app_label}.{migration.name}" for migration, backwards in plan if not backwards]
    return MigrationState(applied=len(executor.loader.applied_migrations), pending=pending)


@functools.cache
def _migrations_on_disk() -> dict[tuple[str, str], tuple[tuple[str, str], ...]]:
    # The files don't change while the process runs: read them once (a squashed migration
    # stands for the ones it replaces).
    loader = MigrationLoader(None, ignore_no_migrations=True)
    return {key: tuple(loader.graph.nodes[key].replaces or ()) for key in loader.graph.nodes}


def migrations_pending() -> list[str]:
    """Pending migrations with one query (for /health/ready)."""
    applied = set(MigrationRecorder(connection).applied_migrations())
    return sorted(
        f"{app}.{name}"
        for (app, name), replaces in _migrations_on_disk().items()
        if (app, name) not in applied and not (replaces and all(key in applied for key in replaces))
    )


def q2_clusters() -> list[Stat]:
    """The q2 clusters that reported in the last few seconds (they write their Stat to the cache)."""
    try:
        # The base Broker reads the stats from the cache alone; the ORM broker's constructor
        # would also close the request's database connection.
        return sorted(Stat.get_all(broker=Broker()) or [], key=lambda stat: str(stat.cluster_id))
    except Exception:  # an unreachable cache means we cannot tell, which reads as "none"
        logger.warning("could not read the q2 cluster stats", exc_info=True)
        return []


@dataclass
class QueueState:
    waiting: int
    in_flight: int
    last_success: datetime | None
    last_failure: datetime | None
    failures_day: int


def q2_queue() -> QueueState:
    """The ORM queue's length and the latest task outcomes (how a stopped worker still shows)."""
    now = timezone.now()
    # The ORM broker hands a task out by pushing its lock into the future (by Q_RETRY seconds).
    queue = OrmQ.objects.filter(key=Conf.CLUSTER_NAME).aggregate(
        waiting=Count("id", filter=Q(lock__lte=now)), in_flight=Count("id", filter=Q(lock__gt=now))
    )
    day_ago = now - timedelta(days=1)
    return QueueState(
        waiting=queue["waiting"],
        in_flight=queue["in_flight"],
        last_success=Task.objects.filter(success=True).aggregate(at=Max("stopped"))["at"],
        last_failure=Task.objects.filter(success=False).aggregate(at=Max("stopped"))["at"],
        failures_day=Task.objects.filter(success=False, stopped__gte=day_ago).count(),
    )


@dataclass
class ScheduleState:
    name: str
    func: str
    every: str
    next_run: datetime | None
    last_run: datetime | None
    last_ok: bool | None
    failures: int
    registered: bool


def _every_minutes(minutes: int) -> str:
    if minutes % 1440 == 0:
        return "daily" if minutes == 1440 else f"every {minutes // 1440} days"
    return f"every {minutes} min"


def _every(schedule: Schedule) -> str:
    if schedule.schedule_type == Schedule.MINUTES:
        return _every_minutes(schedule.minutes or 1)
    if schedule.schedule_type == Schedule.CRON:
        return f"cron {schedule.cron}"
    return schedule.get_schedule_type_display()


def schedules_state() -> list[ScheduleState]:
    """Every schedule with its next run, last run (from its tasks) and failures; code-declared ones
    that are missing from the database are listed as not registered."""
    schedules = list(Schedule.objects.order_by("name"))
    groups = [s.name or str(s.pk) for s in schedules]
    runs = {
        row["group"]: row
        for row in Task.objects.filter(group__in=groups)
        .values("group")
        .annotate(last=Max("stopped"), failures=Count("id", filter=Q(success=False)))
    }
    outcomes = dict(Task.objects.filter(id__in=[s.task for s in schedules if s.task]).values_list("id", "success"))
    states = [
        ScheduleState(
            name=s.name or f"#{s.pk}",
            func=s.func,
            every=_every(s),
            next_run=s.next_run,
            last_run=runs.get(group, {}).get("last"),
            last_ok=outcomes.get(s.task),
            failures=runs.get(group, {}).get("failures", 0),
            registered=True,
        )
        for s, group in zip(schedules, groups)
    ]
    known = {s.name for s in schedules}
    states += [
        ScheduleState(
            name=spec.name,
            func=spec.func,
            every=_every_minutes(spec.minutes),
            next_run=None,
            last_run=None,
            last_ok=None,
            failures=0,
            registered=False,
        )
        for spec in SCHEDULES
        if spec.name not in known
    ]
    return states


@dataclass
class ShardState:
    heartbeat: ShardHeartbeat
    age_seconds: float

    @property
    def running(self) -> bool:
        return self.age_seconds <= HEARTBEAT_STALE_SECONDS


def shards_state() -> list[ShardState]:
    """Each bot shard's last heartbeat and how old it is."""
    now = timezone.now()
    return [ShardState(hb, (now - hb.last_seen).total_seconds()) for hb in ShardHeartbeat.objects.order_by("shard_id")]


def shards_missing(shards: list[ShardState]) -> list[int]:
    """Shard ids that never sent a heartbeat although the newest heartbeat's shard count has them.

    Discord gives such a shard's guilds to it alone, so they go unanswered while the other
    shards look healthy.
    """
    if not shards:
        return []
    newest = max(shards, key=lambda shard: shard.heartbeat.last_seen).heartbeat
    return sorted(set(range(newest.shard_count)) - {shard.heartbeat.shard_id for shard in shards})


def bot_heartbeat_age() -> float | None:
    """Seconds since the newest shard heartbeat (None when no shard ever reported)."""
    newest = ShardHeartbeat.objects.aggregate(at=Max("last_seen"))["at"]
    return None if newest is None else (timezone.now() - newest).total_seconds()


def sweeps_recent(limit: int = 60) -> list[SweepRun]:
    """The latest sweep runs, oldest first (an index probe on ``sweep_run_recent``)."""
    return list(reversed(SweepRun.objects.order_by("-started_at")[:limit]))


def retention_last() -> RetentionRun | None:
    """The latest retention run that changed things (or failed), else the latest dry run."""
    return RetentionRun.objects.order_by("dry_run", "-started_at").first()
