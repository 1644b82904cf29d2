"""Shared start-up for the benchmarks: Django settings, a query counter, table printing."""

from __future__ import annotations

import os
import platform
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent  # the repository
if str(ROOT) not in sys.path:
    sys.path.insert(0, str(ROOT))
os.environ.setdefault("DJANGO_SETTINGS_MODULE", "config.settings")

import django  # noqa: E402

django.setup()

from _table import print_table  # noqa: E402,F401  (the benches import it from here)
from django.db import connection, connections  # noqa: E402
from django.db.backends.signals import connection_created  # noqa: E402


class QueryCounter:
    """Counts every statement on every connection, whichever thread runs it."""

    def __init__(self) -> None:
        self.count = 0
        connection_created.connect(self._install, weak=False)
        for conn in connections.all(initialized_only=True):
            self._install(None, conn)

    def _install(self, sender, connection, **kwargs) -> None:
        if self._wrap not in connection.execute_wrappers:
            connection.execute_wrappers.append(self._wrap)

    def _wrap(self, execute, sql, params, many, context):
        self.count += 1
        return execute(sql, params, many, context)


def machine() -> str:
    cpu = "unknown cpu"
    try:
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("model name"):
                cpu = line.split(":", 1)[1].strip()
                break
    except OSError:
        pass
    return f"{cpu}, {os.cpu_count()} cores, Python {platform.python_version()}, {connection.vendor}"
