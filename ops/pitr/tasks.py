"""The worker's pgBackRest backup job: a differential each run, a full one when the newest is old enough."""

from __future__ import annotations

import logging
from datetime import UTC, datetime, timedelta

from django.conf import settings
from django.db import close_old_connections

from ops.pitr import pgbackrest

logger = logging.getLogger(__name__)


def pitr_backup_kind(rows: list[dict], *, now: datetime) -> str:
    """``full`` when no full backup is younger than PITR_PGBACKREST_FULL_DAYS, else ``diff``.

    One job deciding, rather than a weekly and a daily schedule, because pgBackRest takes one
    backup of a stanza at a time: two schedules would collide on the day both fall due.
    """
    fulls = [row["stopped_at"] for row in rows if row["type"] == "full" and not row["error"]]
    # Half a run's interval of slack, so the full falls on the due run, not the one after it.
    slack = timedelta(hours=settings.PITR_PGBACKREST_DIFF_HOURS / 2)
    due = timedelta(days=settings.PITR_PGBACKREST_FULL_DAYS) - slack
    return "full" if not fulls or now - max(fulls) >= due else "diff"


def pitr_backup_scheduled() -> str:
    """Scheduled every PITR_PGBACKREST_DIFF_HOURS when pgBackRest is configured; the new backup's label."""
    close_old_connections()
    if not pgbackrest.configured():
        return "point-in-time recovery is not configured"
    kind = pitr_backup_kind(pgbackrest.window().backups, now=datetime.now(UTC))
    return pgbackrest.backup(kind)["label"]
