"""Retention: which backups to delete, by count and by age, each kind counted on its own.

Counting each kind apart (scheduled, manual, pre-restore, pre-migrate) means that manual
backups, however many, never push the scheduled ones out: the daily run keeps the newest
BACKUP_KEEP_COUNT scheduled backups whatever else is in the folder. It works on the
backup storage, local or remote alike, and sweeps up what killed or broken uploads left.
"""

from __future__ import annotations

import logging
from datetime import datetime, timedelta

from django.utils import timezone

from ops.backups import storage
from ops.backups.catalog import PREFIX, backup_files_remove, backups_list

logger = logging.getLogger(__name__)
SNAPSHOT_GRACE = timedelta(days=1)  # pre-restore snapshots younger than this survive retention
ARCHIVES = "retention/retention-"  # ops/retention/archive.py's names


def _ours(name: str) -> bool:
    return name.startswith(PREFIX) or name.startswith(ARCHIVES)


def backups_apply_retention(*, keep_count: int, keep_days: int, now: datetime | None = None) -> list[str]:
    """Delete Guildhall's backups beyond the newest ``keep_count`` of their kind or older than ``keep_days``.

    The newest backup of each kind always stays, and so do pre-restore snapshots younger
    than a day (the way back from a restore that turned out wrong). Files this app did not
    make are left alone.
    """
    now = now or timezone.now()
    ours = [b for b in backups_list() if b.name.startswith(PREFIX)]
    seen: dict[str, int] = {}
    deleted = []
    for backup in ours:  # newest first
        index = seen[backup.kind] = seen.get(backup.kind, -1) + 1
        age = now - backup.created_at
        if index == 0 or (backup.kind == "pre-restore" and age < SNAPSHOT_GRACE):
            continue
        if index >= keep_count or age > timedelta(days=keep_days):
            backup_files_remove(backup)
            logger.info("backup %s deleted by retention (%s #%s, %s old)", backup.name, backup.kind, index + 1, age)
            deleted.append(backup.name)
    for name, item in storage.entries().items():  # left by a backup that was killed half way
        if name.startswith(".partial-") and now - item.modified > SNAPSHOT_GRACE:
            storage.delete(name)
    # Parts of uploads cut off half way: backups' and retention archives' only (the bucket may be shared).
    aborted = storage.uploads_abort(started_before=now - SNAPSHOT_GRACE, ours=_ours)
    if aborted:
        logger.info("retention aborted %s unfinished uploads", aborted)
    return deleted
