"""What retention removes, and removing it in short transactions.

Candidates are read in primary-key order, paging on the key, so one pass over a table
costs one scan however many batches it takes, and no index beyond the primary key is
needed. Each batch is its own transaction of a few hundred rows: it locks only those
rows (and, for the ledger, the members' carried-forward rows) and commits in a few
milliseconds, so the bot's writes never wait long.
"""

from __future__ import annotations

import statistics
import time
from collections.abc import Iterator
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from typing import Any

from django.db import connection, transaction
from django.db.models import QuerySet

from commands.models import CookieLedger, LedgerReason
from ops.bundles.kinds import LEDGER, TIMER, TIMER_EVENT, row_encode
from timers.models import TimedRole, TimerEvent, TimerState

BATCH = 100
CHUNK = 2000
ENDED_STATES = (TimerState.EXPIRED, TimerState.CLEARED)
# The pair cooldown (at most 86,400 s) and the daily cap look back one day at most: rows
# younger than that always stay, whatever RETENTION_LEDGER_DAYS says.
RECENT_WINDOW = timedelta(days=1)


def ledger_cutoff(now: datetime, days: int) -> datetime:
    return now - max(timedelta(days=days), RECENT_WINDOW)


def timers_old(cutoff: datetime) -> QuerySet[TimedRole]:
    """Expired and cleared timers that ended before ``cutoff``."""
    return TimedRole.objects.filter(state__in=ENDED_STATES, ended_at__lt=cutoff)


def ledger_old(cutoff: datetime) -> QuerySet[CookieLedger]:
    """Ledger rows older than ``cutoff``, but the carried-forward rows (kept and moved forward) and import rows."""
    # Import rows stay: a re-run of an import compares against them (commands.services.imports).
    return CookieLedger.objects.filter(created_at__lt=cutoff).exclude(reason__in=[LedgerReason.CARRIED, LedgerReason.IMPORT])


def timer_archive_lines(cutoff: datetime) -> Iterator[dict[str, Any]]:
    """Each old timer's line followed by its events' lines (with their database ids, for the record)."""
    timers = timers_old(cutoff).order_by("pk")
    events = TimerEvent.objects.filter(timer__in=timers_old(cutoff)).order_by("timer_id", "pk").iterator(chunk_size=CHUNK)
    event = next(events, None)
    for timer in timers.iterator(chunk_size=CHUNK):
        yield {**row_encode(TIMER, timer), "id": timer.pk, "guild_id": timer.guild_id}
        while event is not None and event.timer_id <= timer.pk:
            if event.timer_id == timer.pk:
                yield {**row_encode(TIMER_EVENT, event), "id": event.pk, "timer_id": event.timer_id}
            event = next(events, None)


def ledger_archive_lines(cutoff: datetime) -> Iterator[dict[str, Any]]:
    for row in ledger_old(cutoff).order_by("pk").iterator(chunk_size=CHUNK):
        yield {**row_encode(LEDGER, row), "id": row.pk, "guild_id": row.guild_id}


@dataclass
class BatchStats:
    """Rows removed and the longest transaction it took."""

    rows: int = 0
    events: int = 0
    carried: int = 0
    batches: int = 0
    longest_ms: float = 0.0
    batch_ms: list[float] = field(default_factory=list)

    def timed(self, started: float) -> None:
        self.batches += 1
        self.batch_ms.append((time.perf_counter() - started) * 1000)
        self.longest_ms = max(self.longest_ms, self.batch_ms[-1])

    @property
    def median_ms(self) -> float:
        return statistics.median(self.batch_ms) if self.batch_ms else 0.0


def timers_delete(*, cutoff: datetime, max_id: int, batch: int = BATCH) -> BatchStats:
    """Delete the old timers up to ``max_id`` (the last one archived) and their events, ``batch`` timers at a time."""
    stats = BatchStats()
    last = 0
    while True:
        ids = list(timers_old(cutoff).filter(pk__gt=last, pk__lte=max_id).order_by("pk").values_list("pk", flat=True)[:batch])
        if not ids:
            return stats
        started = time.perf_counter()
        with transaction.atomic():
            stats.events += TimerEvent.objects.filter(timer_id__in=ids).delete()[0]
            stats.rows += timers_old(cutoff).filter(pk__in=ids).delete()[0]
        stats.timed(started)
        last = ids[-1]


def _carried_add(added: dict[int, int], cutoff: datetime) -> None:
    # Written as SQL: the ORM's Case(When…) for a hundred rows took ~60 ms to compile, inside the transaction.
    table = connection.ops.quote_name(CookieLedger._meta.db_table)
    whens = " ".join("WHEN %s THEN %s" for _ in added)
    params: list[Any] = [value for pk, delta in sorted(added.items()) for value in (pk, delta)]
    params.append(connection.ops.adapt_datetimefield_value(cutoff))
    params.extend(sorted(added))
    marks = ", ".join("%s" for _ in added)
    with connection.cursor() as cursor:
        cursor.execute(
            f"UPDATE {table} SET delta = delta + (CASE id {whens} ELSE 0 END), created_at = %s WHERE id IN ({marks})", params
        )


def _carry_forward(sums: dict[tuple[int, int], int], cutoff: datetime) -> int:
    """Add each member's folded sum onto their carried-forward row (created when missing); return rows created.

    A handful of statements per batch whatever its number of members: a read per guild,
    one UPDATE with a CASE, one bulk INSERT (a statement per member took a batch past 100 ms).
    """
    existing: dict[tuple[int, int], int] = {}
    for guild_id in sorted({guild for guild, _ in sums}):
        # One guild at a time, so that the lookup is a probe of ledger_receiver_recent, not a scan.
        members = sorted(receiver for guild, receiver in sums if guild == guild_id)
        carried = CookieLedger.objects.filter(guild_id=guild_id, receiver_id__in=members, reason=LedgerReason.CARRIED)
        existing.update(((guild_id, receiver_id), pk) for pk, receiver_id in carried.values_list("pk", "receiver_id"))
    if existing:
        _carried_add({pk: sums[key] for key, pk in existing.items()}, cutoff)
    missing = [
        CookieLedger(
            guild_id=guild_id, giver_id=None, receiver_id=receiver_id, delta=total, reason=LedgerReason.CARRIED, created_at=cutoff
        )
        for (guild_id, receiver_id), total in sorted(sums.items())
        if (guild_id, receiver_id) not in existing
    ]
    CookieLedger.objects.bulk_create(missing)
    return len(missing)


def ledger_fold(*, cutoff: datetime, max_id: int, batch: int = BATCH) -> BatchStats:
    """Delete the old ledger rows up to ``max_id``, adding each member's sum onto their one carried-forward row.

    A balance keeps equalling its ledger sum after every batch, and the carried row is
    dated ``cutoff`` with no giver, so the pair cooldown and daily cap (recent gives only)
    never see it.
    """
    stats = BatchStats()
    last = 0
    while True:
        ids = list(ledger_old(cutoff).filter(pk__gt=last, pk__lte=max_id).order_by("pk").values_list("pk", flat=True)[:batch])
        if not ids:
            return stats
        started = time.perf_counter()
        with transaction.atomic():
            # Locked, so that a second run at the same time can't fold the same rows twice.
            rows = list(
                ledger_old(cutoff).filter(pk__in=ids).select_for_update().values_list("pk", "guild_id", "receiver_id", "delta")
            )
            sums: dict[tuple[int, int], int] = {}
            for _, guild_id, receiver_id, delta in rows:
                sums[(guild_id, receiver_id)] = sums.get((guild_id, receiver_id), 0) + delta
            stats.rows += CookieLedger.objects.filter(pk__in=[row[0] for row in rows]).delete()[0]
            stats.carried += _carry_forward(sums, cutoff)
        stats.timed(started)
        last = ids[-1]
