"""Which units of a bundle are good: each line checked against its model, then the rules that tie lines together.

A unit goes in whole or not at all, except a timer's events, each of which is history on
its own. What depends on a refused line is refused with it, saying so: an alias whose
command was refused; the events of a refused timer; a member's balance and ledger rows
together (a balance must equal the sum of its ledger rows, so neither goes in without the
other). Names, members and live timers already seen are kept to refuse duplicates; they
grow with the guild's members, not with its ledger or events.
"""

from __future__ import annotations

from dataclasses import dataclass, field

from django.db import models

from commands.command_templates import compile_template
from commands.restrictions import FIELDS as RESTRICTION_FIELDS
from commands.restrictions import restriction_ids_clean
from commands.services import command_name_clean
from config.errors import ApplicationError
from ops.bundles.kinds import (
    ALIAS,
    ALLOWED_ROLE,
    BALANCE,
    BY_NAME,
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
    RowInvalid,
    row_decode,
    row_encode,
)
from ops.bundles.reading import MAX_ID, Entry, ParsedUnit
from timers.models import LIVE_STATES, TimerState

_KIND_OF = {kind.model: kind.name for kind in KINDS}


@dataclass
class GoodUnit:
    """A unit's rows, ready to insert (``events`` for a timer; ``command`` names an alias's command)."""

    kind: str
    rows: list[models.Model]
    events: list[models.Model] = field(default_factory=list)
    command: str = ""

    def lines(self) -> list[dict]:
        """The unit as export would write it (for comparing with the guild's units)."""
        out = []
        for row in self.rows + self.events:
            kind = BY_NAME[_KIND_OF[type(row)]]
            out.append(row_encode(kind, row) | ({"command": self.command} if kind is ALIAS else {}))
        return out


def _refuse_all(unit: ParsedUnit, cause: Entry, why: str) -> None:
    for entry in unit.entries:
        if not entry.problem:
            entry.problem = f"{why}, and line {cause.number} was refused" if entry is not cause else why


class UnitChecker:
    """Checks units in bundle order for one target guild, remembering what must stay unique."""

    def __init__(self, guild_id: int) -> None:
        self.guild_id = guild_id
        self.names: set[str] = set()
        self.commands: set[str] = set()
        self.singletons: set[str] = set()
        self.members: set[int] = set()
        self.live_timers: set[tuple[int, int]] = set()
        self.keys: set[tuple] = set()

    def check(self, unit: ParsedUnit) -> GoodUnit | None:
        """The unit's rows when it is good; otherwise None, with each refused entry's ``problem`` set."""
        first = unit.entries[0]
        if first.problem or first.line is None:
            return None
        if unit.kind in (BALANCE.name, LEDGER.name):
            return self._member(unit)
        if unit.kind == TIMER.name:
            return self._timer(unit)
        if unit.kind == TIMER_EVENT.name:
            first.problem = f"its timer (ref {first.line.get('timer')!r:.20}) is not the timer line just before it"
            return None
        try:
            row = self._decode(unit.kind, first.line)
            command = self._rules(unit.kind, row, first.line)
        except RowInvalid as exc:
            first.problem = str(exc)
            return None
        return GoodUnit(unit.kind, [row], command=command)

    def _decode(self, kind: str, line: dict) -> models.Model:
        return row_decode(BY_NAME[kind], line, self.guild_id)

    def _rules(self, kind: str, row: models.Model, line: dict) -> str:
        """The rules beyond one field; returns the alias's command name."""
        if kind in (GUILD_SETTINGS.name, TIMER_SETTINGS.name, LOG_SETTINGS.name):
            if kind in self.singletons:
                raise RowInvalid(f"a second {kind} line (a guild has one)")
            self.singletons.add(kind)
        elif kind in (COMMAND.name, ALIAS.name):
            name = getattr(row, "name", "")
            try:
                if command_name_clean(name) != name:
                    raise RowInvalid(f"name {name!r} is not lower-case")
                if kind == COMMAND.name and getattr(row, "enabled", False):
                    compile_template(getattr(row, "template", ""))
                if kind == COMMAND.name:
                    for restriction in RESTRICTION_FIELDS:
                        restriction_ids_clean(restriction, getattr(row, restriction), guild_id=self.guild_id)
            except ApplicationError as exc:
                raise RowInvalid(str(exc)) from None
            if name in self.names:
                raise RowInvalid(f"the name {name!r} is already taken by an earlier command or alias")
            if kind == ALIAS.name:
                target = line.get("command")
                if target not in self.commands:
                    raise RowInvalid(f"its command {target!r:.40} is not among the bundle's commands that went in")
            self.names.add(name)
            if kind == COMMAND.name:
                self.commands.add(name)
            return str(line.get("command", "")) if kind == ALIAS.name else ""
        elif kind in (ALLOWED_ROLE.name, REPORT.name, COOKIE_ROLE.name):
            key = (kind, row.role_id) if kind != REPORT.name else (kind, row.role_id, row.channel_id)  # type: ignore[attr-defined]
            if key in self.keys:
                raise RowInvalid(f"a second {kind} line for the same role{' and channel' if kind == REPORT.name else ''}")
            self.keys.add(key)
        return ""

    def _member(self, unit: ParsedUnit) -> GoodUnit | None:
        why = "a member's balance and ledger rows go in together"
        rows: list[models.Model] = []
        for entry in unit.entries:
            if entry.problem or entry.line is None:
                _refuse_all(unit, entry, why)
                return None
            try:
                rows.append(self._decode(entry.line["@kind"], entry.line))
            except RowInvalid as exc:
                entry.problem = str(exc)
                _refuse_all(unit, entry, why)
                return None
        first = unit.entries[0]
        has_balance = unit.kind == BALANCE.name
        member = rows[0].member_id if has_balance else rows[0].receiver_id  # type: ignore[attr-defined]
        if member in self.members:
            first.problem = f"member {member}'s cookies appear a second time"
            _refuse_all(unit, first, why)
            return None
        balance = rows[0].balance if has_balance else 0  # type: ignore[attr-defined]
        total = sum(row.delta for row in rows[1 if has_balance else 0 :])  # type: ignore[attr-defined]
        if balance != total:
            first.problem = f"member {member}'s balance {balance} does not equal the sum of their ledger rows ({total})"
            _refuse_all(unit, first, why)
            return None
        self.members.add(member)
        return GoodUnit(unit.kind, rows)

    def _timer(self, unit: ParsedUnit) -> GoodUnit | None:
        first = unit.entries[0]
        assert first.line is not None
        try:
            ref = first.line.get("@ref")
            if type(ref) is not int or not 0 < ref <= MAX_ID:
                raise RowInvalid(f"ref must be a positive whole number, not {ref!r:.40}")
            timer = row_decode(TIMER, first.line, self.guild_id)
            state = timer.state  # type: ignore[attr-defined]
            if state == TimerState.ACTIVE and timer.expires_at is None:  # type: ignore[attr-defined]
                raise RowInvalid("an active timer needs expires_at")
            if state == TimerState.PAUSED and timer.paused_remaining is None:  # type: ignore[attr-defined]
                raise RowInvalid("a paused timer needs paused_remaining")
            key = (timer.member_id, timer.role_id)  # type: ignore[attr-defined]
            if state in LIVE_STATES:
                if key in self.live_timers:
                    raise RowInvalid("a second running timer for the same member and role")
                self.live_timers.add(key)
        except RowInvalid as exc:
            first.problem = str(exc)
            _refuse_all(unit, first, "a timer's events go in only with their timer")
            return None
        good = GoodUnit(TIMER.name, [timer])
        for entry in unit.entries[1:]:
            if entry.problem or entry.line is None:
                continue
            try:
                good.events.append(row_decode(TIMER_EVENT, entry.line, self.guild_id))
            except RowInvalid as exc:
                entry.problem = str(exc)
        return good
