"""Writing a guild bundle: the header line, then every unit's lines, one at a time."""

from __future__ import annotations

import contextlib
import gzip
import io
import os
import tomllib
from collections.abc import Callable, Iterator
from datetime import datetime
from pathlib import Path
from typing import IO, Any

from django.conf import settings
from django.db import connection, transaction
from django.db.migrations.recorder import MigrationRecorder
from django.utils import timezone

from ops.bundles.kinds import FORMAT_VERSION
from ops.bundles.units import guild_counts, guild_units, line_dump
from ops.moves.progress import ProgressBar

Write = Callable[[str], None]


def product_version() -> str:
    """pyproject.toml's [project] version."""
    with open(Path(settings.BASE_DIR) / "pyproject.toml", "rb") as f:
        return str(tomllib.load(f)["project"]["version"])


def applied_migrations() -> dict[str, list[str]]:
    """The applied migrations, by app."""
    by_app: dict[str, list[str]] = {}
    for app, name in sorted(MigrationRecorder(connection).applied_migrations()):
        by_app.setdefault(app, []).append(name)
    return by_app


def bundle_open(path: Path, mode: str, *, compressed: bool | None = None) -> IO[str]:
    """A bundle file as text, gzip-compressed when its name ends in .gz (or ``compressed`` says so)."""
    if path.name.endswith(".gz") if compressed is None else compressed:
        return io.TextIOWrapper(gzip.GzipFile(path, mode + "b"), encoding="utf-8", newline="\n")
    return open(path, mode, encoding="utf-8", newline="\n")


@contextlib.contextmanager
def read_snapshot() -> Iterator[None]:
    """One snapshot for every table read, so that counts and rows agree while the bot writes."""
    if connection.in_atomic_block:  # inside another transaction, that one's snapshot is what there is
        yield
    elif connection.vendor == "postgresql":
        with transaction.atomic():
            with connection.cursor() as cursor:
                cursor.execute("SET TRANSACTION ISOLATION LEVEL REPEATABLE READ, READ ONLY")
            yield
    else:
        # Our SQLite transactions start IMMEDIATE, which would hold the write lock for the whole
        # export; a DEFERRED one that only reads is a WAL snapshot that blocks no writer.
        connection.ensure_connection()
        with connection.cursor() as cursor:
            cursor.execute("BEGIN DEFERRED")
        try:
            yield
        finally:
            with connection.cursor() as cursor:
                cursor.execute("COMMIT")


def guild_export(*, guild_id: int, out: IO[str], write: Write | None = None, now: datetime | None = None) -> dict[str, int]:
    """Write one guild's bundle to ``out``; return the rows written per kind."""
    with read_snapshot():
        counts = guild_counts(guild_id)
        header: dict[str, Any] = {
            "@kind": "header",
            "format": FORMAT_VERSION,
            "product_version": product_version(),
            "guild_id": guild_id,
            "exported_at": (now or timezone.now()).isoformat(),
            "migrations": applied_migrations(),
            "counts": counts,
        }
        out.write(line_dump(header) + "\n")
        bar = ProgressBar(write, f"guild {guild_id}", sum(counts.values())) if write else None
        for unit in guild_units(guild_id):
            for line in unit.lines:
                out.write(line_dump(line) + "\n")
            if bar:
                bar.advance(len(unit.lines))
        if bar:
            bar.finish()
    return counts


def guild_export_file(*, guild_id: int, path: Path, write: Write | None = None) -> dict[str, int]:
    """Export to ``path`` through a temporary name, so that a half-written bundle is never left under it."""
    temporary = path.with_name(f".{path.name}.partial")
    try:
        with bundle_open(temporary, "w", compressed=path.name.endswith(".gz")) as out:
            counts = guild_export(guild_id=guild_id, out=out, write=write)
        os.replace(temporary, path)
    finally:
        temporary.unlink(missing_ok=True)
    return counts
