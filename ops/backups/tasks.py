"""q2 tasks for backups (scheduled in ops/schedules.py)."""

from __future__ import annotations

from django.conf import settings

from ops.backups.retention import backups_apply_retention
from ops.backups.services import backup_create


def backup_scheduled() -> str:
    """The daily backup, then retention (BACKUP_KEEP_COUNT, BACKUP_KEEP_DAYS)."""
    backup = backup_create(kind="scheduled")
    deleted = backups_apply_retention(keep_count=settings.BACKUP_KEEP_COUNT, keep_days=settings.BACKUP_KEEP_DAYS)
    return f"{backup.name} ({backup.size} bytes); retention removed {len(deleted)}"
