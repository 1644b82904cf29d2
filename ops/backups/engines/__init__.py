"""The database engines behind backups: how each one dumps, checks, restores and counts.

Every engine module offers the same names: ``VENDOR``, ``EXTENSION``, ``GZIP_LEVEL``, ``CONNECTOR`` (the
django-dbbackup connector whose format the dump has, recorded in the sidecar so that
``manage.py dbrestore`` can read our files), ``MAGIC`` (the first bytes of a dump),
``dump_create``, ``dump_check``, ``dump_migrations``, ``dump_restore``,
``scratch_database`` and ``database_counts``.
"""

from __future__ import annotations

from types import ModuleType

from ops.backups.engines import postgresql, sqlite
from ops.backups.engines.common import DumpUnreadable, quote_table

__all__ = ["ENGINES", "LABELS", "DumpUnreadable", "engine_for", "quote_table", "vendor_of_dump", "vendor_of_engine"]

ENGINES: dict[str, ModuleType] = {sqlite.VENDOR: sqlite, postgresql.VENDOR: postgresql}
LABELS = {sqlite.VENDOR: "SQLite", postgresql.VENDOR: "PostgreSQL"}


def engine_for(vendor: str) -> ModuleType:
    """The engine module for a Django ``connection.vendor``."""
    try:
        return ENGINES[vendor]
    except KeyError:
        raise NotImplementedError(f"backups support SQLite and PostgreSQL, not {vendor}") from None


def vendor_of_engine(engine: str | None) -> str | None:
    """``sqlite``/``postgresql`` for a Django ENGINE path such as ``django.db.backends.sqlite3``."""
    if not engine:
        return None
    if "sqlite" in engine or "spatialite" in engine:
        return sqlite.VENDOR
    if "postg" in engine:
        return postgresql.VENDOR
    return None


def vendor_of_dump(head: bytes) -> str | None:
    """Which engine wrote a dump, from its first bytes (None when neither)."""
    for vendor, engine in ENGINES.items():
        if head.startswith(engine.MAGIC):
            return vendor
    return None
