"""Which point-in-time recovery engine serves this installation: pgBackRest on PostgreSQL, Litestream on SQLite."""

from __future__ import annotations

import importlib
from types import ModuleType

from django.db import connections

from config.errors import ApplicationError
from ops.pitr.errors import PitrNotConfigured
from ops.pitr.window import RecoveryWindow

NOT_CONFIGURED = "point-in-time recovery is not configured"


def pitr_engine() -> ModuleType:
    """The engine module (``configured``, ``window``, ``restore``) for the default database's vendor.

    PitrNotConfigured when that engine is not set up (or, for Litestream, not installed).
    """
    vendor = connections["default"].vendor
    name = {"postgresql": "ops.pitr.pgbackrest", "sqlite": "ops.pitr.litestream"}.get(vendor)
    if name is None:
        raise PitrNotConfigured(f"{NOT_CONFIGURED}: no engine for {vendor}")
    try:
        # Imported on demand: the Litestream engine is optional, and neither is needed to serve pages.
        engine = importlib.import_module(name)
    except ImportError:
        raise PitrNotConfigured(f"{NOT_CONFIGURED} ({name} is not available)") from None
    if not engine.configured():
        hint = "PITR_PGBACKREST_STANZA" if vendor == "postgresql" else "LITESTREAM_REPLICA_URL"
        raise PitrNotConfigured(f"{NOT_CONFIGURED} (set {hint})")
    return engine


def pitr_window_shown() -> RecoveryWindow | None:
    """The window for the Backups page: None when recovery is not configured; an engine's failure as its problem."""
    try:
        engine = pitr_engine()
    except PitrNotConfigured:
        return None
    try:
        return engine.window()
    except ApplicationError as exc:
        name = engine.__name__.rsplit(".", 1)[-1]
        return RecoveryWindow(engine=name, repository="", earliest=None, latest=None, problem=str(exc))
