"""Imports from the bots our communities arrive from: Praetbot (MongoDB) and BoostMon (PostgreSQL)."""

from ops.imports.boostmon import boostmon_import
from ops.imports.praetbot import praetbot_import
from ops.imports.report import ImportRefused, ImportReport

__all__ = ["ImportRefused", "ImportReport", "boostmon_import", "praetbot_import"]
