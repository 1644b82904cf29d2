"""SQLite file checks: size, pages, free pages, WAL, quick_check, journal mode and per-table rows."""

from __future__ import annotations

from pathlib import Path

from django.apps import apps
from django.db import connection

from config.checks import FAIL, PASS, WARN, level
from ops.dbhealth.checks import Check, fetch, size_text

# Guildhall's own apps: their tables are counted (COUNT is exact on SQLite and these are local files).
OWN_APPS = ("commands", "timers", "bots", "ops")
FREE_WARN, FREE_FAIL, FREE_MIN_PAGES = 0.20, 0.50, 256
WAL_WARN, WAL_FAIL = 64 * 1024**2, 1024**3


def database_path() -> Path | None:
    """The main database file, as SQLite itself reports it (None for an in-memory database)."""
    for _seq, name, path in fetch("PRAGMA database_list"):
        if name == "main" and path:
            return Path(path)
    return None


def _file_size(path: Path | None) -> int:
    try:
        return path.stat().st_size if path else 0
    except FileNotFoundError:
        return 0


def _pragma(name: str) -> int:
    """A numeric pragma's value (page_count, page_size, freelist_count)."""
    return int(fetch(f"PRAGMA {name}")[0][0])


def database_bytes() -> int:
    """The database's size: its pages (the file, not counting the WAL)."""
    return _pragma("page_count") * _pragma("page_size")


def own_tables() -> list[str]:
    """The tables of Guildhall's own models, in a stable order."""
    existing = set(connection.introspection.table_names())
    names = {
        model._meta.db_table
        for label in OWN_APPS
        if label in apps.app_configs
        for model in apps.get_app_config(label).get_models()
        if not model._meta.proxy and model._meta.managed
    }
    return sorted(names & existing)


def _table_bytes() -> dict[str, int]:
    """Bytes per table including its indexes, from the dbstat table when SQLite has it."""
    try:
        rows = fetch("SELECT m.tbl_name, SUM(s.pgsize) FROM dbstat s JOIN sqlite_master m ON m.name = s.name GROUP BY m.tbl_name")
    except Exception:  # dbstat is a compile-time option
        return {}
    return {name: int(size) for name, size in rows}


def table_stats(limit: int | None = None) -> dict[str, dict[str, int | None]]:
    """Each own table's exact row count and, when known, its bytes; the ``limit`` largest by rows."""
    sizes = _table_bytes()
    stats: dict[str, dict[str, int | None]] = {}
    for table in own_tables():
        count = fetch(f"SELECT COUNT(*) FROM {connection.ops.quote_name(table)}")[0][0]
        stats[table] = {"rows": int(count), "bytes": sizes.get(table)}
    largest = sorted(stats.items(), key=lambda item: -(item[1]["rows"] or 0))[:limit]
    return dict(largest)


def file_size() -> Check:
    """File size."""
    path = database_path()
    files = [(str(p), size_text(_file_size(p))) for p in (path, _sidecar(path, "-wal"), _sidecar(path, "-shm")) if p]
    total = sum(_file_size(p) for p in (path, _sidecar(path, "-wal")) if p)
    return Check(
        name="File size",
        status=PASS,
        value=size_text(total) if path else "in memory",
        threshold="for information",
        columns=("file", "size"),
        rows=files,
    )


def pages() -> Check:
    """Pages."""
    count, size = _pragma("page_count"), _pragma("page_size")
    return Check(
        name="Pages",
        status=PASS,
        value=f"{count:,} × {size:,} B",
        threshold="for information",
        columns=("page_count", "page_size", "bytes"),
        rows=[(count, size, size_text(count * size))],
    )


def freelist() -> Check:
    """Free pages."""
    free, count = _pragma("freelist_count"), _pragma("page_count")
    share = free / count if count and free >= FREE_MIN_PAGES else 0.0
    return Check(
        name="Free pages",
        status=level(share, warn=FREE_WARN, fail=FREE_FAIL),
        value=f"{free:,} of {count:,} pages ({free / count if count else 0:.1%})",
        threshold=f"warn when {FREE_WARN:.0%} of the file is free pages, fail at {FREE_FAIL:.0%} (from {FREE_MIN_PAGES} pages)",
        note="Free pages are reused by new rows; VACUUM (with the processes stopped) gives them back to the disk.",
    )


def wal_size() -> Check:
    """WAL size."""
    size = _file_size(_sidecar(database_path(), "-wal"))
    return Check(
        name="WAL size",
        status=level(size, warn=WAL_WARN, fail=WAL_FAIL),
        value=size_text(size),
        threshold=f"warn over {size_text(WAL_WARN)}, fail over {size_text(WAL_FAIL)}",
        note="A WAL that keeps growing means checkpoints cannot finish: look for a long-lived reader.",
    )


def quick_check() -> Check:
    """Integrity (quick_check)."""
    rows = [row[0] for row in fetch("PRAGMA quick_check(20)")]
    ok = rows == ["ok"]
    return Check(
        name="Integrity (quick_check)",
        status=PASS if ok else FAIL,
        value="ok" if ok else f"{len(rows)} problems",
        threshold="fail on any problem",
        columns=("problem",),
        rows=[] if ok else [(r,) for r in rows],
    )


def journal_mode() -> Check:
    """Journal mode."""
    mode = str(fetch("PRAGMA journal_mode")[0][0]).lower()
    return Check(
        name="Journal mode",
        status=PASS if mode == "wal" else WARN,
        value=mode,
        threshold="warn unless wal",
        note="" if mode == "wal" else "Without WAL the bot, worker and web block each other's reads while writing.",
    )


def table_rows() -> Check:
    """Table rows."""
    stats = table_stats()
    return Check(
        name="Table rows",
        status=PASS,
        value=f"{sum(s['rows'] or 0 for s in stats.values()):,} rows in {len(stats)} tables",
        threshold="for information",
        columns=("table", "rows", "size"),
        rows=[(t, s["rows"], size_text(s["bytes"])) for t, s in stats.items()],
    )


def _sidecar(path: Path | None, suffix: str) -> Path | None:
    return path.with_name(path.name + suffix) if path else None


CHECKS = [file_size, pages, freelist, wal_size, quick_check, journal_mode, table_rows]
