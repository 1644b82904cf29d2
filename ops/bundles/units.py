"""A guild's data as bundle units, in bundle order, read from the database with flat memory.

A unit is what goes in or is refused together: a settings row, a command, an alias, a
member's cookies (their balance, then every ledger row they received, so that the
balance always equals its ledger sum), an allowed role, a report, a timer with its events.
Export writes the units' lines; a second import of the same bundle compares digests of
the units with those of the guild.
"""

from __future__ import annotations

import hashlib
import json
from collections.abc import Iterator
from dataclasses import dataclass, field
from typing import Any

from commands.models import CookieBalance, CookieLedger
from ops.bundles.kinds import (
    ALIAS,
    ALLOWED_ROLE,
    BALANCE,
    COMMAND,
    COOKIE_ROLE,
    GUILD_SETTINGS,
    KINDS,
    LEDGER,
    LOG_SETTINGS,
    REPORT,
    TIMER,
    TIMER_EVENT,
    TIMER_SETTINGS,
    guild_rows,
    row_encode,
)

CHUNK = 2000
Line = dict[str, Any]


def line_dump(line: Line) -> str:
    """A line's canonical text: keys sorted, no spaces, UTF-8 kept as is."""
    return json.dumps(line, sort_keys=True, separators=(",", ":"), ensure_ascii=False)


@dataclass
class Digest:
    """An order-free digest of a set of units: their count and the sum of their SHA-256s."""

    units: int = 0
    total: int = 0

    def add(self, lines: list[Line]) -> None:
        # References are bundle-local numbers, renumbered by every export: leave them out.
        text = "\n".join(line_dump({k: v for k, v in line.items() if k not in ("@ref", "timer")}) for line in lines)
        self.units += 1
        self.total = (self.total + int.from_bytes(hashlib.sha256(text.encode()).digest(), "big")) % (1 << 256)


@dataclass
class Unit:
    kind: str  # the kind of its first line ("balance" or "ledger" for a member's cookies)
    lines: list[Line] = field(default_factory=list)


def unit_group(kind: str) -> str:
    """The digest group a unit belongs to (a member's cookies are one group however they start)."""
    return "cookies" if kind in (BALANCE.name, LEDGER.name) else kind


def guild_counts(guild_id: int) -> dict[str, int]:
    """Rows per kind in the guild."""
    return {kind.name: guild_rows(kind, guild_id).order_by().count() for kind in KINDS}


def guild_has_data(guild_id: int) -> bool:
    return any(guild_rows(kind, guild_id).order_by().exists() for kind in KINDS)


def guild_ids_with_data() -> list[int]:
    """Every guild id that any guild-scoped table mentions."""
    found: set[int] = set()
    for kind in KINDS:
        if kind is not TIMER_EVENT:
            found.update(kind.model._default_manager.order_by().values_list("guild_id", flat=True).distinct())
    return sorted(found)


def _member_units(guild_id: int) -> Iterator[Unit]:
    # A merge of two ordered streams: balances by member, ledger rows by receiver.
    balances = CookieBalance.objects.filter(guild_id=guild_id).order_by("member_id").iterator(chunk_size=CHUNK)
    ledger = guild_rows(LEDGER, guild_id).iterator(chunk_size=CHUNK)
    balance = next(balances, None)
    row: CookieLedger | None = next(ledger, None)
    while balance is not None or row is not None:
        if balance is not None and (row is None or balance.member_id <= row.receiver_id):
            member, unit = balance.member_id, Unit(BALANCE.name, [row_encode(BALANCE, balance)])
            balance = next(balances, None)
        else:
            assert row is not None
            member, unit = row.receiver_id, Unit(LEDGER.name)
        while row is not None and row.receiver_id == member:
            unit.lines.append(row_encode(LEDGER, row))
            row = next(ledger, None)
        yield unit


def _timer_units(guild_id: int) -> Iterator[Unit]:
    events = guild_rows(TIMER_EVENT, guild_id).iterator(chunk_size=CHUNK)
    event = next(events, None)
    for ref, timer in enumerate(guild_rows(TIMER, guild_id).iterator(chunk_size=CHUNK), start=1):
        unit = Unit(TIMER.name, [{**row_encode(TIMER, timer), "@ref": ref}])
        while event is not None and event.timer_id == timer.pk:
            unit.lines.append({**row_encode(TIMER_EVENT, event), "timer": ref})
            event = next(events, None)
        yield unit


def guild_units(guild_id: int) -> Iterator[Unit]:
    """Every unit of the guild, in bundle order."""
    for kind in (GUILD_SETTINGS, TIMER_SETTINGS, LOG_SETTINGS, COMMAND):
        for obj in guild_rows(kind, guild_id).iterator(chunk_size=CHUNK):
            yield Unit(kind.name, [row_encode(kind, obj)])
    for alias in guild_rows(ALIAS, guild_id).select_related("command").iterator(chunk_size=CHUNK):
        yield Unit(ALIAS.name, [{**row_encode(ALIAS, alias), "command": alias.command.name}])
    yield from _member_units(guild_id)
    for kind in (ALLOWED_ROLE, REPORT, COOKIE_ROLE):
        for obj in guild_rows(kind, guild_id).iterator(chunk_size=CHUNK):
            yield Unit(kind.name, [row_encode(kind, obj)])
    yield from _timer_units(guild_id)


def guild_digests(guild_id: int) -> dict[str, Digest]:
    """The digest of each group of the guild's units."""
    digests: dict[str, Digest] = {}
    for unit in guild_units(guild_id):
        digests.setdefault(unit_group(unit.kind), Digest()).add(unit.lines)
    return digests
