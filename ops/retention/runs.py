"""One retention run: archive what is old, only then delete it, and record the run.

The archive is written in full and made durable before the first row is deleted, so a
run that fails while archiving (a full disk, an unwritable BACKUP_DIR) deletes nothing
and records why. Deleting stops at the last row archived, so rows that grow old while
the run is under way wait for the next run.
"""

from __future__ import annotations

import logging
from dataclasses import dataclass
from datetime import datetime, timedelta

from django.conf import settings
from django.utils import timezone

from guilds.services.log import log_entries_prune
from ops.models import RetentionRun
from ops.retention.archive import ArchiveWriter
from ops.retention.pruning import (
    BATCH,
    ledger_archive_lines,
    ledger_cutoff,
    ledger_fold,
    ledger_old,
    timer_archive_lines,
    timers_delete,
    timers_old,
)
from timers.models import TimerEvent

logger = logging.getLogger(__name__)


@dataclass(frozen=True)
class Cutoffs:
    """Before when timers (ended) and ledger rows are old; None keeps them."""

    timers: datetime | None
    ledger: datetime | None


def retention_cutoffs(now: datetime, *, timer_days: int | None = None, ledger_days: int | None = None) -> Cutoffs:
    """The cutoffs from RETENTION_TIMER_DAYS and RETENTION_LEDGER_DAYS (0 = keep)."""
    timer_days = settings.RETENTION_TIMER_DAYS if timer_days is None else timer_days
    ledger_days = settings.RETENTION_LEDGER_DAYS if ledger_days is None else ledger_days
    return Cutoffs(
        timers=now - timedelta(days=timer_days) if timer_days else None,
        ledger=ledger_cutoff(now, ledger_days) if ledger_days else None,
    )


def _dry_run(run: RetentionRun, cutoffs: Cutoffs) -> None:
    if cutoffs.timers:
        run.timers_archived = timers_old(cutoffs.timers).count()
        run.events_archived = TimerEvent.objects.filter(timer__in=timers_old(cutoffs.timers)).count()
    if cutoffs.ledger:
        run.ledger_rows_folded = ledger_old(cutoffs.ledger).count()


def _archive(run: RetentionRun, cutoffs: Cutoffs) -> tuple[int, int]:
    """Write the archive; return the last timer id and ledger id in it (0 when none)."""
    header = {
        "started_at": run.started_at.isoformat(),
        "timers_ended_before": cutoffs.timers.isoformat() if cutoffs.timers else None,
        "ledger_before": cutoffs.ledger.isoformat() if cutoffs.ledger else None,
    }
    writer = ArchiveWriter(started_at=run.started_at, header=header)
    last_timer = last_ledger = 0
    try:
        if cutoffs.timers:
            for line in timer_archive_lines(cutoffs.timers):
                writer.write(line)
                if line["@kind"] == "timer":
                    run.timers_archived += 1
                    last_timer = line["id"]
                else:
                    run.events_archived += 1
        if cutoffs.ledger:
            for line in ledger_archive_lines(cutoffs.ledger):
                writer.write(line)
                run.ledger_rows_folded += 1
                last_ledger = line["id"]
        run.archive_path = str(writer.commit())
    except BaseException:
        writer.abandon()
        raise
    return last_timer, last_ledger


def retention_run(
    *, dry_run: bool = False, now: datetime | None = None, batch: int = BATCH, cutoffs: Cutoffs | None = None
) -> RetentionRun:
    """Archive and delete old timers and ledger rows (see the module); the run is recorded, failed or not."""
    now = now or timezone.now()
    cutoffs = cutoffs or retention_cutoffs(now)
    run = RetentionRun.objects.create(started_at=timezone.now(), dry_run=dry_run)
    try:
        if dry_run:
            _dry_run(run, cutoffs)
        elif cutoffs.timers or cutoffs.ledger:
            last_timer, last_ledger = _archive(run, cutoffs)
            longest = 0.0
            if cutoffs.timers and last_timer:
                longest = max(longest, timers_delete(cutoff=cutoffs.timers, max_id=last_timer, batch=batch).longest_ms)
            if cutoffs.ledger and last_ledger:
                folded = ledger_fold(cutoff=cutoffs.ledger, max_id=last_ledger, batch=batch)
                run.carried_rows, longest = folded.carried, max(longest, folded.longest_ms)
            run.longest_batch_ms = round(longest, 2)
        if not dry_run and settings.RETENTION_LOG_DAYS:
            pruned = log_entries_prune(cutoff=now - timedelta(days=settings.RETENTION_LOG_DAYS), batch=batch)
            logger.info("retention: %d activity-log entries older than %d days deleted", pruned, settings.RETENTION_LOG_DAYS)
    except Exception as exc:
        logger.exception("retention run failed")
        run.error = f"{type(exc).__name__}: {exc}"[:2000]
    run.finished_at = timezone.now()
    run.save()
    return run
