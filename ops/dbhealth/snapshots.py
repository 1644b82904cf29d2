"""Daily health snapshots: take one, read recent ones, and draw the growth plots from them."""

from __future__ import annotations

import logging
from datetime import timedelta
from types import ModuleType

from django.db import connection
from django.db.models import QuerySet
from django.utils import timezone
from django.utils.safestring import SafeString

from ops.dbhealth.checks import Check, checks_for_vendor, size_text
from ops.dbhealth.svg import Series, line_chart
from ops.models import HealthSnapshot

logger = logging.getLogger(__name__)

KEEP_DAYS = 730
PLOTTED_TABLES = 5


def _engine() -> ModuleType:
    if connection.vendor == "postgresql":
        from ops.dbhealth import postgres

        return postgres
    from ops.dbhealth import sqlite

    return sqlite


def health_snapshot_take(*, checks: list[Check] | None = None) -> HealthSnapshot:
    """Record the database's size, its largest tables and every check's verdict; drop old snapshots."""
    checks = checks_for_vendor() if checks is None else checks
    engine = _engine()
    # Read first, then write: on SQLite a write transaction would hold the lock through the scans.
    database_bytes, tables = engine.database_bytes(), engine.table_stats(limit=20)
    now = timezone.now()
    snapshot = HealthSnapshot.objects.create(
        taken_at=now,
        vendor=connection.vendor,
        database_bytes=database_bytes,
        tables=tables,
        checks={check.key: check.as_snapshot() for check in checks},
    )
    HealthSnapshot.objects.filter(taken_at__lt=now - timedelta(days=KEEP_DAYS)).delete()
    logger.info("health snapshot: %s, %s", connection.vendor, size_text(snapshot.database_bytes))
    return snapshot


def health_snapshots_recent(*, days: int = 180) -> QuerySet[HealthSnapshot]:
    """This database's snapshots of the last ``days`` days, oldest first."""
    since = timezone.now() - timedelta(days=days)
    return HealthSnapshot.objects.filter(vendor=connection.vendor, taken_at__gte=since).order_by("taken_at")


def growth_charts(snapshots: list[HealthSnapshot]) -> dict[str, SafeString]:
    """The database-size plot and the plot of the largest tables (by their latest size, else rows)."""
    size = line_chart(
        [Series("database", [(s.taken_at, s.database_bytes) for s in snapshots])],
        title="Database size",
        value_format=size_text,
        binary=True,
        empty_message="No snapshots yet: the first is taken daily.",
    )
    latest = snapshots[-1].tables if snapshots else {}
    measure = "bytes" if any((stats or {}).get("bytes") for stats in latest.values()) else "rows"
    top = sorted(latest, key=lambda name: -((latest[name] or {}).get(measure) or 0))[:PLOTTED_TABLES]
    series = [
        Series(name, [(s.taken_at, (s.tables[name] or {}).get(measure) or 0) for s in snapshots if name in s.tables])
        for name in top
    ]
    tables = line_chart(
        series,
        title=f"Largest tables ({'size' if measure == 'bytes' else 'rows'})",
        value_format=size_text if measure == "bytes" else (lambda v: f"{v:,.0f}"),
        binary=measure == "bytes",
        empty_message="No snapshots yet.",
    )
    return {"size": size, "tables": tables}
