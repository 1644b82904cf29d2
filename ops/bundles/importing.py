"""Importing a guild bundle into an empty guild, or recognising that the guild already holds exactly it.

The import is one transaction: a bundle refused as a whole (newer format, damaged file,
a guild holding other data) changes nothing, and a crash part-way leaves nothing behind
to confuse the next run. Bad lines are refused with their line number and reason while
the good units go in. A second import of the same bundle finds the guild not empty,
compares the guild's units with the bundle's good units (order-free digests per group)
and reports every row unchanged; any difference refuses it, changing nothing.
"""

from __future__ import annotations

import contextlib
from collections.abc import Callable, Iterable, Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import IO

from django.db import connection, models, transaction

from commands.models import CommandAlias, CustomCommand
from commands.services import commands_version_bump, cookie_toplists_rebuild
from ops.bundles.checks import GoodUnit, UnitChecker
from ops.bundles.export import bundle_open
from ops.bundles.kinds import ALIAS, KINDS, TIMER
from ops.bundles.reading import MAX_ID, BundleRefused, header_read, units_read
from ops.bundles.units import Digest, guild_digests, guild_has_data, unit_group
from ops.moves.progress import ProgressBar
from timers.models import TimedRole, TimerEvent

BATCH = 1000
MAX_PROBLEMS_KEPT = 1000
Write = Callable[[str], None]


@dataclass
class ImportSummary:
    """What one import did: rows imported, unchanged and refused, with the refused lines' reasons."""

    guild_id: int
    imported: int = 0
    unchanged: int = 0
    refused: int = 0
    problems: list[str] = field(default_factory=list)
    notes: list[str] = field(default_factory=list)

    def refuse(self, number: int, problem: str) -> None:
        self.refused += 1
        if len(self.problems) < MAX_PROBLEMS_KEPT:
            self.problems.append(f"line {number}: {problem}")


@contextlib.contextmanager
def _stored_times_kept() -> Iterator[None]:
    # auto_now/auto_now_add would stamp every imported row with the import's time; the
    # bundle's times are the history. The command runs alone in its process, so a flag
    # flipped for its duration is enough.
    flipped = []
    for kind in KINDS:
        for f in kind.model._meta.concrete_fields:
            if isinstance(f, models.DateField) and (f.auto_now or f.auto_now_add):
                flipped.append((f, f.auto_now, f.auto_now_add))
                f.auto_now = f.auto_now_add = False
    try:
        yield
    finally:
        for f, auto_now, auto_now_add in flipped:
            f.auto_now, f.auto_now_add = auto_now, auto_now_add


class _Inserter:
    """Buffers good units and inserts them in batches, parents before the rows that point at them."""

    def __init__(self) -> None:
        self.buffers: dict[type[models.Model], list[models.Model]] = {}
        self.timers: list[GoodUnit] = []
        self.command_ids: dict[str, int] = {}
        if not connection.features.can_return_rows_from_bulk_insert:
            raise BundleRefused("This database cannot return the ids of inserted rows (SQLite 3.35 or newer is needed).")

    def add(self, good: GoodUnit) -> None:
        if good.kind == TIMER.name:
            self.timers.append(good)
            if len(self.timers) >= BATCH:
                self._flush_timers()
            return
        if good.kind == ALIAS.name:
            self._flush(CustomCommand)
            good.rows[0].command_id = self.command_ids[good.command]  # type: ignore[attr-defined]
        for row in good.rows:
            rows = self.buffers.setdefault(type(row), [])
            rows.append(row)
            if len(rows) >= BATCH:
                self._flush(type(row))

    def _flush(self, model: type[models.Model]) -> None:
        rows = self.buffers.pop(model, [])
        if rows:
            model._default_manager.bulk_create(rows)
            if model is CustomCommand:
                self.command_ids.update((row.name, row.pk) for row in rows)  # type: ignore[attr-defined]

    def _flush_timers(self) -> None:
        TimedRole.objects.bulk_create([good.rows[0] for good in self.timers])  # type: ignore[misc]
        events = []
        for good in self.timers:
            for event in good.events:
                event.timer_id = good.rows[0].pk  # type: ignore[attr-defined]
                events.append(event)
        TimerEvent.objects.bulk_create(events, batch_size=BATCH)  # type: ignore[arg-type]
        self.timers = []

    def finish(self) -> None:
        models_in_order: list[type[models.Model]] = [CustomCommand, CommandAlias, *self.buffers]
        for model in models_in_order:
            self._flush(model)
        if self.timers:
            self._flush_timers()


def guild_import(*, stream: IO[str], as_guild: int | None = None, write: Write | None = None) -> ImportSummary:
    """Import the bundle read from ``stream`` (see the module's docstring); BundleRefused changes nothing."""
    header = header_read(stream.readline() or None)
    if as_guild is not None and not 0 < as_guild <= MAX_ID:
        raise BundleRefused(f"--as-guild must be a Discord guild id, not {as_guild}.")
    guild_id = as_guild if as_guild is not None else header["guild_id"]
    summary = ImportSummary(guild_id=guild_id)
    counts = {k: v for k, v in header.get("counts", {}).items() if type(v) is int}
    bar = ProgressBar(write, f"guild {guild_id}", sum(counts.values())) if write else None
    try:
        with transaction.atomic(), _stored_times_kept():
            already = guild_has_data(guild_id)
            seen = _run(
                enumerate(stream, start=2), guild_id=guild_id, summary=summary, insert=not already, bar=bar, counts=counts
            )
            if already:
                _compare(guild_id, seen, summary)
            else:
                # Bots that serve the guild cached it empty: have them reload its commands and settings.
                transaction.on_commit(lambda: commands_version_bump(guild_id))
                # The 7- and 30-day toplists come from the ledger rows that just went in.
                for _ in cookie_toplists_rebuild(guild_ids=[guild_id]):
                    pass
    except (OSError, EOFError, UnicodeDecodeError) as exc:
        raise BundleRefused(f"The bundle file is damaged ({exc}); nothing was changed.") from exc
    finally:
        if bar:
            bar.finish()
    return summary


def _run(
    lines: Iterable[tuple[int, str]],
    *,
    guild_id: int,
    summary: ImportSummary,
    insert: bool,
    bar: ProgressBar | None,
    counts: dict[str, int],
) -> dict[str, Digest]:
    checker = UnitChecker(guild_id)
    inserter = _Inserter() if insert else None
    digests: dict[str, Digest] = {}
    found: dict[str, int] = {}
    for unit in units_read(lines):
        good = checker.check(unit)
        for entry in unit.entries:
            if entry.line is not None:
                found[entry.line["@kind"]] = found.get(entry.line["@kind"], 0) + 1
            if entry.problem:
                summary.refuse(entry.number, entry.problem)
        if good is not None:
            rows = len(good.rows) + len(good.events)
            if inserter:
                inserter.add(good)
                summary.imported += rows
            else:
                summary.unchanged += rows
                digests.setdefault(unit_group(good.kind), Digest()).add(good.lines())
        if bar:
            bar.advance(len(unit.entries))
    if inserter:
        inserter.finish()
    for kind in sorted(set(counts) | set(found)):
        if counts.get(kind, 0) != found.get(kind, 0):
            # A file cut short reads as a good bundle with fewer rows; this is how it shows.
            summary.notes.append(
                f"the header counts {counts.get(kind, 0):,} {kind} rows, the bundle holds {found.get(kind, 0):,}"
            )
    return digests


def _compare(guild_id: int, seen: dict[str, Digest], summary: ImportSummary) -> None:
    here = guild_digests(guild_id)
    groups = sorted(set(here) | set(seen))
    differ = [g for g in groups if here.get(g, Digest()) != seen.get(g, Digest())]
    if differ:
        detail = "; ".join(
            f"{g} differ: {here.get(g, Digest()).units} here, {seen.get(g, Digest()).units} in the bundle" for g in differ
        )
        raise BundleRefused(
            f"Guild {guild_id} already holds data that is not this bundle's ({detail}). guild_import fills only an "
            "empty guild (or finds an earlier import of the same bundle unchanged); nothing was changed."
        )
    summary.notes.append(f"guild {guild_id} already holds exactly this bundle's data: nothing to do")


def guild_import_file(*, path: Path, as_guild: int | None = None, write: Write | None = None) -> ImportSummary:
    """Import the bundle at ``path`` (gzip-compressed when its name ends in .gz)."""
    try:
        stream = bundle_open(path, "r")
    except OSError as exc:
        raise BundleRefused(f"Can't read {path}: {exc.strerror or exc}.") from exc
    with stream:
        return guild_import(stream=stream, as_guild=as_guild, write=write)
