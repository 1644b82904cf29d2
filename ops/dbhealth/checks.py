"""The result of one database-health check, and the runner that keeps one failing check from the rest."""

from __future__ import annotations

import logging
from collections.abc import Callable, Iterable, Sequence
from contextlib import nullcontext
from dataclasses import dataclass, field
from typing import Any

from django.db import connection, transaction

from config.checks import WARN

logger = logging.getLogger(__name__)


@dataclass
class Check:
    """One check's verdict: ``status`` is pass/warn/fail against ``threshold`` (plain words)."""

    name: str
    status: str
    value: str
    threshold: str = ""
    columns: Sequence[str] = ()
    rows: Sequence[Sequence[Any]] = field(default_factory=list)
    note: str = ""
    error: str = ""

    @property
    def key(self) -> str:
        """A stable identifier for snapshots (the name in snake case)."""
        return "_".join("".join(c if c.isalnum() else " " for c in self.name.lower()).split())

    def as_snapshot(self) -> dict[str, str]:
        return {"name": self.name, "status": self.status, "value": self.value}


def size_text(num_bytes: float | None) -> str:
    """Bytes in the unit a reader expects (1.5 MB, 12 kB)."""
    if num_bytes is None:
        return "—"
    size = float(num_bytes)
    for unit in ("B", "kB", "MB", "GB", "TB"):
        if abs(size) < 1024 or unit == "TB":
            return f"{size:.0f} {unit}" if unit == "B" else f"{size:.1f} {unit}"
        size /= 1024
    return f"{size:.1f} TB"  # pragma: no cover - the loop always returns


def fetch(sql: str, params: Sequence[Any] | None = None) -> list[tuple]:
    """Run one read-only statement on the default database and return its rows."""
    with connection.cursor() as cursor:
        cursor.execute(sql, params)
        return list(cursor.fetchall())


def run_checks(functions: Iterable[Callable[[], Check]]) -> list[Check]:
    """Run each check, so that one failing statement spoils neither the others nor the caller's
    transaction; a check that cannot run is shown as a warning with the reason."""
    results = []
    for function in functions:
        try:
            # A savepoint on PostgreSQL, where an error aborts the whole transaction. Not on SQLite:
            # there a failed read leaves the connection usable, and atomic() would BEGIN IMMEDIATE,
            # taking the write lock away from the bot and the worker for a read-only page.
            with transaction.atomic() if connection.vendor == "postgresql" else nullcontext():
                results.append(function())
        except Exception as exc:  # a check must never take the page down
            logger.warning("database check %s could not run", function.__name__, exc_info=True)
            name = (function.__doc__ or function.__name__).strip().splitlines()[0].rstrip(".")
            results.append(Check(name=name, status=WARN, value="could not run", error=f"{type(exc).__name__}: {exc}"))
    return results


def checks_for_vendor() -> list[Check]:
    """All checks that apply to the default database."""
    vendor = connection.vendor
    if vendor == "postgresql":
        from ops.dbhealth import postgres, postgres_activity

        return run_checks(postgres.CHECKS + postgres_activity.CHECKS)
    if vendor == "sqlite":
        from ops.dbhealth import sqlite

        return run_checks(sqlite.CHECKS)
    return [Check(name="Database", status=WARN, value=vendor, note=f"No checks are written for {vendor}.")]
