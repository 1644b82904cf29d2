"""What a guild bundle holds: one kind of line per guild-scoped model, its fields and how values are written.

Fields are read from the models, so a field added later travels in the bundle without a
change here; only the ones that mean nothing in another installation are left out, by
name, below. A model that has a ``guild_id`` (or hangs off one that has) is either a kind
here or listed in ``NOT_EXPORTED`` with the reason; a test holds every model to that.
"""

from __future__ import annotations

import functools
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from typing import Any

from django.core.exceptions import ValidationError
from django.db import models
from django.utils.duration import duration_iso_string

from commands.models import (
    CommandAlias,
    CommandCooldown,
    CookieBalance,
    CookieDay,
    CookieLedger,
    CookieRole,
    CookieWindow,
    CustomCommand,
    GuildSettings,
)
from guilds.models import Channel, Guild, LogEntry, LogSettings, Member, Role
from timers.models import AllowedRole, BulkJob, RoleReport, TimedRole, TimerEvent, TimerReconcile, TimerSettings

FORMAT_VERSION = 1
_ALWAYS_LEFT_OUT = {"id", "guild_id"}

# Models scoped to a guild that a bundle does not carry, and why.
NOT_EXPORTED: dict[type[models.Model], str] = {
    CommandCooldown: "a running cooldown (seconds to minutes long); the cooldown's configuration travels on the command",
    LogEntry: "the activity log of what this installation's bot did and posted; the importing bot starts its own (timers' history travels as their events)",
    CookieDay: "the toplists' per-day sums, derived from the ledger that travels; the import rebuilds them",
    CookieWindow: "the 7- and 30-day toplists, derived from the ledger that travels; the import rebuilds them",
    BulkJob: "a bulk change under way or done (its cursor is this database's progress); the timers it set or cleared travel with their events",
    TimerReconcile: "when the bot last checked the guild's timers against Discord: the importing bot checks again",
    # The directory: what Discord told this installation's bot, which the importing bot hears again.
    Guild: "the guild's name as this bot last saw it; the importing bot reads it from GUILD_CREATE when it connects",
    Role: "the guild's roles as this bot last saw them; the importing bot reads them from GUILD_CREATE when it connects",
    Channel: "the guild's channels as this bot last saw them; the importing bot reads them from GUILD_CREATE when it connects",
    Member: "members' names as this bot last saw them; the importing bot learns them again from messages, interactions and member events",
}


@dataclass(frozen=True)
class Kind:
    """One kind of bundle line: a model, the fields written (in order) and the export order."""

    name: str
    model: type[models.Model]
    order_by: tuple[str, ...]
    left_out: frozenset[str] = frozenset()
    # A foreign key written as a reference: the field's name -> the key the line uses.
    refs: dict[str, str] = field(default_factory=dict)
    # Other keys of the line that are not fields (a timer's bundle-local "@ref").
    line_keys: tuple[str, ...] = ()

    # Cached: read for every row of a million-row export or import.
    @functools.cached_property
    def fields(self) -> list[models.Field]:
        skip = _ALWAYS_LEFT_OUT | self.left_out | set(self.refs)
        return [f for f in self.model._meta.concrete_fields if f.name not in skip and f.attname not in skip]

    @functools.cached_property
    def line_keys_expected(self) -> frozenset[str]:
        return frozenset({f.name for f in self.fields} | set(self.refs.values()) | set(self.line_keys) | {"@kind"})

    @functools.cached_property
    def has_guild_id(self) -> bool:
        return any(f.name == "guild_id" for f in self.model._meta.concrete_fields)


_LEASES = frozenset({"lease_until", "lease_owner", "warn_lease_until", "warn_lease_owner"})

GUILD_SETTINGS = Kind("guild_settings", GuildSettings, ("id",))
TIMER_SETTINGS = Kind("timer_settings", TimerSettings, ("id",))
# The log channel travels; whether this installation's last post there failed does not.
LOG_SETTINGS = Kind("log_settings", LogSettings, ("id",), left_out=frozenset({"post_error", "post_error_at"}))
COMMAND = Kind("command", CustomCommand, ("name",))
ALIAS = Kind("alias", CommandAlias, ("name",), refs={"command": "command"})
BALANCE = Kind("balance", CookieBalance, ("member_id",))
LEDGER = Kind("ledger", CookieLedger, ("receiver_id", "created_at", "id"))
ALLOWED_ROLE = Kind("allowed_role", AllowedRole, ("role_id",))
REPORT = Kind("report", RoleReport, ("role_id", "channel_id"))
COOKIE_ROLE = Kind("cookie_role", CookieRole, ("threshold", "role_id"))
# A sweep's claim (lease) belongs to a worker of this installation, not to the timer.
TIMER = Kind("timer", TimedRole, ("id",), left_out=_LEASES, line_keys=("@ref",))
TIMER_EVENT = Kind("timer_event", TimerEvent, ("timer_id", "created_at", "id"), refs={"timer": "timer"})

KINDS: tuple[Kind, ...] = (
    GUILD_SETTINGS,
    TIMER_SETTINGS,
    LOG_SETTINGS,
    COMMAND,
    ALIAS,
    BALANCE,
    LEDGER,
    ALLOWED_ROLE,
    REPORT,
    COOKIE_ROLE,
    TIMER,
    TIMER_EVENT,
)
BY_NAME = {kind.name: kind for kind in KINDS}


def guild_rows(kind: Kind, guild_id: int) -> models.QuerySet:
    """The kind's rows in one guild, in export order."""
    rows: models.QuerySet
    if kind is TIMER_EVENT:
        rows = TimerEvent.objects.filter(timer__guild_id=guild_id)
    else:
        rows = kind.model._default_manager.filter(guild_id=guild_id)
    return rows.order_by(*kind.order_by)


def value_encode(f: models.Field, value: Any) -> Any:
    """A field's value as JSON: datetimes in ISO 8601 UTC, durations in ISO 8601, the rest as they are."""
    if value is None:
        return None
    if isinstance(f, models.DateTimeField):
        return value.astimezone(UTC).isoformat()
    if isinstance(f, models.DurationField):
        return duration_iso_string(value)
    return value


def row_encode(kind: Kind, obj: models.Model) -> dict[str, Any]:
    """One row as a bundle line's dict (without references, which the caller adds)."""
    line: dict[str, Any] = {"@kind": kind.name}
    for f in kind.fields:
        line[f.name] = value_encode(f, getattr(obj, f.attname))
    return line


class RowInvalid(Exception):
    """A line that can't become a row; the message says why."""


_INT_FIELDS = (models.IntegerField, models.BigIntegerField, models.PositiveIntegerField, models.SmallIntegerField)


def _value_decode(f: models.Field, raw: Any) -> Any:
    if raw is None:
        if not f.null:
            raise RowInvalid(f"{f.name} can't be empty")
        return None
    if isinstance(f, models.DateTimeField):
        if not isinstance(raw, str):
            raise RowInvalid(f"{f.name} must be an ISO 8601 time")
        try:
            value = datetime.fromisoformat(raw)
        except ValueError:
            raise RowInvalid(f"{f.name} is not an ISO 8601 time: {raw[:40]!r}") from None
        if value.tzinfo is None:
            raise RowInvalid(f"{f.name} has no time zone: {raw[:40]!r}")
        return value.astimezone(UTC)
    if isinstance(f, models.DurationField):
        duration = f.to_python(raw) if isinstance(raw, str) else None
        if not isinstance(duration, timedelta):
            raise RowInvalid(f"{f.name} must be an ISO 8601 duration")
        return duration
    if isinstance(f, models.BooleanField):
        if not isinstance(raw, bool):
            raise RowInvalid(f"{f.name} must be true or false")
        return raw
    if isinstance(f, _INT_FIELDS):
        if type(raw) is not int:
            raise RowInvalid(f"{f.name} must be a whole number, not {raw!r:.40}")
        return raw
    if isinstance(f, (models.CharField, models.TextField)) and not isinstance(raw, str):
        raise RowInvalid(f"{f.name} must be text")
    return raw


def row_decode(kind: Kind, line: dict[str, Any], guild_id: int) -> models.Model:
    """Check a line's fields against the model (types, ranges, choices) and build the unsaved row."""
    expected = kind.line_keys_expected
    if line.keys() != expected:
        missing, unknown = sorted(expected - line.keys()), sorted(line.keys() - expected)
        if missing:
            raise RowInvalid(f"missing field(s): {', '.join(missing)}")
        raise RowInvalid(f"unknown field(s): {', '.join(unknown)}")
    values: dict[str, Any] = {}
    for f in kind.fields:
        value = _value_decode(f, line[f.name])
        try:
            f.run_validators(value) if value is not None else None
            f.validate(value, None)
        except ValidationError as exc:
            raise RowInvalid(f"{f.name}: {' '.join(exc.messages)}") from None
        values[f.attname] = value
    if kind.has_guild_id:
        values["guild_id"] = guild_id
    return kind.model(**values)
