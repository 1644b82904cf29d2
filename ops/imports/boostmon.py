"""``import_boostmon``: BoostMon's timers and allowed roles, mapped exactly.

Epoch milliseconds stay exact (``expires_at``, ``pause_expires_at``); a paused row's
truth is ``paused_remaining_ms`` (its ``expires_at`` is stale); ``pause_type`` user/global
becomes our pause kind; ``warnings_sent`` {"60": true…} stays sent; rows already past
due come in active, so the sweep removes their roles at once. A row whose ``guild_id``
is NULL needs ``--guild``; without it that row is refused and the others go in.
"""

from __future__ import annotations

import hashlib
import re
from collections.abc import Iterator
from dataclasses import replace
from datetime import UTC, datetime, timedelta
from itertools import islice
from typing import Any

from django.db import transaction
from django.utils import timezone

from config.errors import ApplicationError
from ops.imports.boostmon_sources import BoostmonSource
from ops.imports.report import ImportRefused, ImportReport, Write
from ops.moves.progress import ProgressBar
from timers.models import PauseKind
from timers.services.imports import TimerImport, allowed_role_import, timer_import

BATCH = 500
_EPOCH = datetime(1970, 1, 1, tzinfo=UTC)
_PAUSE_KINDS = {None: PauseKind.MEMBER, "user": PauseKind.MEMBER, "global": PauseKind.GLOBAL}


def boostmon_import(*, source: BoostmonSource, guild_id: int | None, write: Write, dry_run: bool = False) -> ImportReport:
    """Import the source's allowed roles, then its timers; return the report."""
    report = ImportReport(dry_run=dry_run)
    now = timezone.now()
    _allowed_roles(source.allowed_roles, guild_id, report, dry_run)
    seen: dict[tuple[int, int, int], str] = {}
    bar = ProgressBar(write, "BoostMon timers", source.total)
    rows: Iterator[dict[str, Any]] = iter(source.rows)
    while batch := list(islice(rows, BATCH)):
        with transaction.atomic():
            for row in batch:
                where = str(row.get("where", "row"))
                try:
                    with transaction.atomic():  # a refused row leaves the batch's other rows in
                        report.count("timers", _timer_row(row, guild_id, seen, now, dry_run))
                except ApplicationError as exc:
                    report.refuse("timers", where, str(exc))
        bar.advance(len(batch))
    bar.finish()
    return report


def _allowed_roles(rows: list[dict[str, Any]], guild_id: int | None, report: ImportReport, dry_run: bool) -> None:
    with transaction.atomic():
        for row in rows:
            where = f"guild {row.get('guild_id')} role {row.get('role_id')}"
            try:
                guild = _snowflake(row.get("guild_id"), "guild_id", optional=True) or guild_id
                if guild is None:
                    raise ImportRefused("guild_id is NULL; give --guild ID to import it")
                role = _id_of(row.get("role_id"), "role_id")
                report.count("allowed roles", allowed_role_import(guild_id=guild, role_id=role, dry_run=dry_run))
            except ApplicationError as exc:
                report.refuse("allowed roles", where, str(exc))


def _timer_row(
    row: dict[str, Any], guild_id: int | None, seen: dict[tuple[int, int, int], str], now: datetime, dry_run: bool
) -> str:
    if row.get("error"):
        raise ImportRefused(row["error"])
    guild = _snowflake(row.get("guild_id"), "guild_id", optional=True) or guild_id
    if guild is None:
        raise ImportRefused("guild_id is NULL; give --guild ID to import it")
    spec = timer_import_spec(row, now)
    key = (guild, spec.member_id, spec.role_id)
    if key in seen:
        raise ImportRefused(
            f"a second timer for member {spec.member_id} and role {spec.role_id} (the first, {seen[key]}, was kept)"
        )
    seen[key] = str(row.get("where"))
    detail = f"imported from BoostMon ({row.get('where')})"
    return timer_import(
        guild_id=guild, spec=spec, detail=detail, fingerprint=_fingerprint(guild, row, spec), now=now, dry_run=dry_run
    )


def timer_import_spec(row: dict[str, Any], now: datetime) -> TimerImport:
    """Our timer for one row of ``role_timers``, or ImportRefused saying which field is wrong."""
    member = _id_of(row.get("user_id"), "user_id")
    role = _id_of(row.get("role_id"), "role_id")
    paused = row.get("paused") or False
    if not isinstance(paused, bool):
        raise ImportRefused(f"paused is {paused!r}, not true or false")
    pause_type = row.get("pause_type")
    if pause_type not in _PAUSE_KINDS:
        raise ImportRefused(f"pause_type {pause_type!r} is not user, global or NULL")
    common = TimerImport(
        member_id=member,
        role_id=role,
        warn_channel_id=_snowflake(row.get("warn_channel_id"), "warn_channel_id", optional=True),
        warnings_sent=_warnings_sent(row.get("warnings_sent")),
        issued_by_id=_snowflake(row.get("issued_by"), "issued_by", optional=True, lenient=True),
    )
    if not paused:
        return replace(common, expires_at=_moment(row.get("expires_at"), "expires_at"))
    remaining_ms = _millis(row.get("paused_remaining_ms"), "paused_remaining_ms", optional=True)
    if remaining_ms is None:
        # Rows from before paused_remaining_ms: the remainder was expiry minus the moment of pausing.
        if row.get("paused_at") is None or row.get("expires_at") is None:
            raise ImportRefused("a paused timer without paused_remaining_ms (nor expires_at and paused_at)")
        remaining_ms = _millis_of(row["expires_at"], "expires_at") - _millis_of(row["paused_at"], "paused_at")
    if remaining_ms <= 0:
        return replace(common, expires_at=now)  # nothing left: due now, as BoostMon would expire it
    pause_until = _moment(row.get("pause_expires_at"), "pause_expires_at", optional=True)
    return replace(
        common,
        paused_remaining=timedelta(milliseconds=remaining_ms),
        pause_until=pause_until,
        pause_kind=_PAUSE_KINDS[pause_type],
    )


def _fingerprint(guild: int, row: dict[str, Any], spec: TimerImport) -> str:
    # What was imported, not where from: the same timer read by --dsn or --csv is the same import.
    parts = (guild, spec.member_id, spec.role_id, spec.warn_channel_id, sorted(spec.warnings_sent), spec.pause_kind)
    timing = (spec.paused_remaining, spec.pause_until) if spec.paused else (str(row.get("expires_at")).strip(),)
    return hashlib.sha256(repr((parts, timing)).encode()).hexdigest()[:16]


def _warnings_sent(value: Any) -> list[int]:
    if value is None:
        return []
    if not isinstance(value, dict):
        raise ImportRefused(f'warnings_sent is {value!r}, not an object like {{"10": true}}')
    sent = []
    for key, flag in value.items():
        if not (isinstance(key, str) and key.isdigit()):
            raise ImportRefused(f'warnings_sent has the key {key!r}, not minutes like "10"')
        if flag:
            sent.append(int(key))
    return sorted(sent, reverse=True)


def _millis(value: Any, label: str, *, optional: bool = False) -> int | None:
    if value is None and optional:
        return None
    if isinstance(value, int) and not isinstance(value, bool):
        return value
    if isinstance(value, str) and re.fullmatch(r"-?[0-9]{1,18}", value.strip()):
        return int(value)
    if isinstance(value, float) and value.is_integer():
        return int(value)
    raise ImportRefused(f"{label} is missing" if value is None else f"{label} is {value!r}, not epoch milliseconds")


def _millis_of(value: Any, label: str) -> int:
    millis = _millis(value, label)
    if millis is None:
        raise ImportRefused(f"{label} is missing")
    return millis


def _id_of(value: Any, label: str) -> int:
    found = _snowflake(value, label)
    if found is None:
        raise ImportRefused(f"{label} is missing")
    return found


def _moment(value: Any, label: str, *, optional: bool = False) -> datetime | None:
    millis = _millis(value, label, optional=optional)
    # Added as a timedelta, not fromtimestamp(ms / 1000): a float would round some milliseconds.
    return None if millis is None else _EPOCH + timedelta(milliseconds=millis)


def _snowflake(value: Any, label: str, *, optional: bool = False, lenient: bool = False) -> int | None:
    if value is None and optional:
        return None
    if isinstance(value, int) and not isinstance(value, bool) and 0 < value < 2**63:
        return value
    if isinstance(value, str) and re.fullmatch(r"[0-9]{1,19}", value.strip()) and 0 < int(value) < 2**63:
        return int(value)
    if lenient:
        return None  # issued_by: a name in some rows; who issued a timer is not worth refusing it
    raise ImportRefused(f"{label} is missing" if value is None else f"{label} is {value!r}, not a Discord id")
