"""Reading a bundle: the header, then its lines grouped into units (what goes in or is refused together)."""

from __future__ import annotations

import json
from collections.abc import Iterable, Iterator
from dataclasses import dataclass, field
from typing import Any

from config.errors import ApplicationError
from ops.bundles.kinds import BALANCE, BY_NAME, FORMAT_VERSION, LEDGER, TIMER, TIMER_EVENT

MAX_ID = 2**63 - 1


class BundleRefused(ApplicationError):
    """The whole bundle is refused; nothing was changed."""


@dataclass
class Entry:
    """One line of the bundle: its number, its parsed dict (None when unreadable), and why it was refused."""

    number: int
    line: dict[str, Any] | None
    problem: str = ""


@dataclass
class ParsedUnit:
    kind: str
    entries: list[Entry] = field(default_factory=list)


def header_read(text: str | None) -> dict[str, Any]:
    """The header line, checked: a bundle of a format this version reads, for a guild."""
    if text is None:
        raise BundleRefused("The bundle is empty: it has no header line.")
    try:
        header = json.loads(text)
    except ValueError:
        raise BundleRefused("Line 1 is not a bundle header (not JSON): is this a guild_export bundle?") from None
    if not isinstance(header, dict) or header.get("@kind") != "header":
        raise BundleRefused('Line 1 is not a bundle header (no "@kind": "header"): is this a guild_export bundle?')
    version = header.get("format")
    if type(version) is not int or version < 1:
        raise BundleRefused(f"The bundle's header has no valid format version ({version!r:.40}).")
    if version > FORMAT_VERSION:
        made_by = header.get("product_version", "a newer version")
        raise BundleRefused(
            f"This bundle is format {version}, made by Guildhall {made_by}; this Guildhall reads formats up to "
            f"{FORMAT_VERSION}. Upgrade Guildhall, then import it. Nothing was changed."
        )
    guild_id = header.get("guild_id")
    if type(guild_id) is not int or not 0 < guild_id <= MAX_ID:
        raise BundleRefused(f"The bundle's header has no valid guild id ({guild_id!r:.40}).")
    if not isinstance(header.get("counts", {}), dict):
        raise BundleRefused("The bundle's header has malformed counts.")
    return header


def _entry(number: int, text: str) -> Entry:
    try:
        line = json.loads(text)
    except json.JSONDecodeError as exc:
        return Entry(number, None, f"not JSON ({exc.msg} at column {exc.colno})")
    except ValueError as exc:
        return Entry(number, None, f"not JSON ({exc})")
    if not isinstance(line, dict):
        return Entry(number, None, "not a JSON object")
    kind = line.get("@kind")
    if kind == "header":
        return Entry(number, None, "a second header")
    if kind not in BY_NAME:
        return Entry(number, None, f"unknown kind {kind!r:.40}")
    return Entry(number, line)


def units_read(lines: Iterable[tuple[int, str]]) -> Iterator[ParsedUnit]:
    """Group numbered lines into units: a member's balance with the ledger rows they received after it,
    a timer with the events after it, every other line on its own."""
    unit: ParsedUnit | None = None
    owner: Any = None  # the member or timer reference that the open unit gathers rows for
    for number, text in lines:
        if not text.strip():
            continue
        entry = _entry(number, text)
        kind = entry.line["@kind"] if entry.line else "?"
        follows = (kind == LEDGER.name and unit is not None and unit.kind in (BALANCE.name, LEDGER.name)) or (
            kind == TIMER_EVENT.name and unit is not None and unit.kind == TIMER.name
        )
        key = entry.line.get("receiver_id" if kind == LEDGER.name else "timer") if entry.line else None
        if follows and key == owner:
            assert unit is not None
            unit.entries.append(entry)
            continue
        if unit is not None:
            yield unit
        unit = ParsedUnit(kind, [entry])
        owner = None
        if entry.line and kind == BALANCE.name:
            owner = entry.line.get("member_id")
        elif entry.line and kind == LEDGER.name:
            owner = entry.line.get("receiver_id")
        elif entry.line and kind == TIMER.name:
            owner = entry.line.get("@ref")
    if unit is not None:
        yield unit
