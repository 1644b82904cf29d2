"""Reading BoostMon's data: its PostgreSQL tables, a CSV export of ``role_timers``, or its older data.json.

Each source gives rows in ``role_timers``' shape (a dict per row, values as BoostMon
stored them) with a ``where`` label for the report, and a total for the progress bar.
"""

from __future__ import annotations

import csv
import json
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from ops.imports.report import ImportRefused

COLUMNS = (
    "id",
    "user_id",
    "role_id",
    "expires_at",
    "warn_channel_id",
    "paused",
    "paused_at",
    "paused_remaining_ms",
    "warnings_sent",
    "guild_id",
    "pause_type",
    "pause_expires_at",
    "issued_by",
)
_FETCH = 2000


@dataclass
class BoostmonSource:
    """Rows of ``role_timers`` (each with ``where``), how many, and ``timer_allowed_roles`` when the source has it."""

    total: int
    rows: Iterator[dict[str, Any]]
    allowed_roles: list[dict[str, Any]] = field(default_factory=list)


def source_from_dsn(dsn: str) -> BoostmonSource:
    """BoostMon's own database (read only, streamed with a server-side cursor)."""
    import psycopg
    from psycopg.rows import dict_row

    try:
        connection = psycopg.connect(dsn, connect_timeout=10, row_factory=dict_row)
    except psycopg.Error as exc:
        raise ImportRefused(f"Can't connect to BoostMon's database: {str(exc).strip()}") from None
    try:
        connection.read_only = True
        with connection.cursor() as cursor:
            cursor.execute("SELECT count(*) AS n FROM role_timers")
            total = (cursor.fetchone() or {"n": 0})["n"]
            cursor.execute("SELECT to_regclass('timer_allowed_roles') IS NOT NULL AS present")
            allowed: list[dict[str, Any]] = []
            if (cursor.fetchone() or {}).get("present"):
                cursor.execute("SELECT guild_id, role_id, role_name FROM timer_allowed_roles ORDER BY guild_id, role_id")
                allowed = list(cursor.fetchall())
    except psycopg.Error as exc:
        connection.close()
        raise ImportRefused(f"BoostMon's database has no readable role_timers table: {str(exc).strip()}") from None
    return BoostmonSource(total=total, rows=_dsn_rows(connection), allowed_roles=allowed)


def _dsn_rows(connection: Any) -> Iterator[dict[str, Any]]:
    with connection, connection.cursor(name="guildhall_boostmon_import") as cursor:
        cursor.itersize = _FETCH
        cursor.execute(f"SELECT {', '.join(COLUMNS)} FROM role_timers ORDER BY id")
        for row in cursor:
            yield {**row, "where": f"row id {row['id']}"}


def source_from_csv(path: Path | str) -> BoostmonSource:
    """A ``\\copy role_timers TO … CSV HEADER`` export: empty fields are NULL, booleans t/f."""
    try:
        with open(path, encoding="utf-8-sig", newline="") as handle:
            reader = csv.DictReader(handle)
            missing = [c for c in ("id", "user_id", "role_id", "expires_at") if c not in (reader.fieldnames or [])]
            if missing:
                raise ImportRefused(f"{path} is not a CSV export of role_timers with a header: no {', '.join(missing)} column.")
            rows = [_csv_row(row, reader.line_num) for row in reader]
    except OSError as exc:
        raise ImportRefused(f"Can't read {path}: {exc.strerror}.") from None
    return BoostmonSource(total=len(rows), rows=iter(rows))


def _csv_row(row: dict[str, Any], line: int) -> dict[str, Any]:
    values: dict[str, Any] = {k: (v if v != "" else None) for k, v in row.items() if k is not None}
    if isinstance(values.get("paused"), str):
        values["paused"] = {"t": True, "true": True, "f": False, "false": False}.get(values["paused"].lower(), values["paused"])
    if isinstance(values.get("warnings_sent"), str):
        try:
            values["warnings_sent"] = json.loads(values["warnings_sent"])
        except json.JSONDecodeError:
            pass  # refused by the mapping, with the row's id
    values["where"] = f"row id {values.get('id')} (line {line})"
    return values


def source_from_json(path: Path | str) -> BoostmonSource:
    """The older ``data.json``: ``{userId: {roles: {roleId: {expiresAt, warnChannelId, warningsSent, paused…}}}}``."""
    try:
        with open(path, encoding="utf-8-sig") as handle:
            data = json.load(handle)
    except OSError as exc:
        raise ImportRefused(f"Can't read {path}: {exc.strerror}.") from None
    except json.JSONDecodeError as exc:
        raise ImportRefused(f"{path} is not valid JSON (line {exc.lineno}: {exc.msg}).") from None
    if not isinstance(data, dict):
        raise ImportRefused(f"{path} is not BoostMon's data.json (an object keyed by member id).")
    rows: list[dict[str, Any]] = []
    for user_id, entry in data.items():
        roles = entry.get("roles") if isinstance(entry, dict) else None
        if not isinstance(roles, dict):
            rows.append({"where": f"member {user_id}", "error": "no `roles` object"})
            continue
        for role_id, timer in roles.items():
            where = f"member {user_id} role {role_id}"
            if not isinstance(timer, dict):
                rows.append({"where": where, "error": "the timer is not an object"})
                continue
            rows.append(
                {
                    "where": where,
                    "user_id": user_id,
                    "role_id": role_id,
                    "expires_at": timer.get("expiresAt"),
                    "warn_channel_id": timer.get("warnChannelId"),
                    "warnings_sent": timer.get("warningsSent"),
                    "paused": timer.get("paused", False),
                    "paused_at": timer.get("paused_at"),
                    "paused_remaining_ms": timer.get("paused_remaining_ms"),
                    "guild_id": None,
                }
            )
    return BoostmonSource(total=len(rows), rows=iter(rows))
