"""Exports: staff download commands, cookie balances, the cookie ledger and timers.

``/admin/ops/exports/<dataset>.csv`` or ``.jsonl`` (JSON Lines), optionally for one
guild (``?guild=<id>``). The rows are streamed in primary-key order, 2,000 per query:
each query is a short index range scan that starts after the last id sent, so no
transaction or server-side cursor stays open while a slow client downloads, and a
million rows never sit in memory.

Each row carries the names the bot knows next to its ids (``guild_name``, ``member_name``,
``role_name``…: "My Server", "Alice (@alice)", "@Booster"), looked up in the directory
once per chunk; empty when the bot has not seen the id.

In JSON, Discord ids are strings (as in Discord's API and ours: they exceed what a
JavaScript number holds exactly). In CSV, text that a spreadsheet would run as a formula
(starting with = + - @, tab or carriage return) is prefixed with a single quote.
"""

from __future__ import annotations

import csv
import json
import logging
from collections.abc import Iterable, Iterator
from dataclasses import dataclass
from datetime import date, datetime, timedelta
from typing import Any

from django.contrib.admin.views.decorators import staff_member_required
from django.core.exceptions import PermissionDenied
from django.db.models import Model, QuerySet
from django.http import Http404, HttpResponseBadRequest, StreamingHttpResponse
from django.utils import timezone
from django.views.decorators.http import require_GET

from commands.models import CommandAlias, CookieBalance, CookieLedger, CustomCommand
from config.database import lag_tolerant_alias
from config.numbers import parse_int
from guilds.selectors import directory_names
from timers.models import TimedRole

logger = logging.getLogger(__name__)

CHUNK_ROWS = 2000
MAX_ID = 2**63 - 1
FORMULA_STARTS = ("=", "+", "-", "@", "\t", "\r")
CONTENT_TYPES = {"csv": "text/csv; charset=utf-8", "jsonl": "application/jsonl; charset=utf-8"}


@dataclass(frozen=True)
class Dataset:
    """What one export holds: a model's columns, and which of them are Discord ids."""

    model: type[Model]
    columns: tuple[str, ...]
    snowflakes: frozenset[str]
    with_aliases: bool = False  # commands: add each command's aliases as a column
    # (column, kind, id column): a name from the directory for the id (kind: guild, role, channel, member)
    names: tuple[tuple[str, str, str], ...] = ()

    @property
    def permission(self) -> str:
        return f"{self.model._meta.app_label}.view_{self.model._meta.model_name}"

    @property
    def header(self) -> tuple[str, ...]:
        return self.columns + (("aliases",) if self.with_aliases else ()) + tuple(name for name, _, _ in self.names)


DATASETS: dict[str, Dataset] = {
    "commands": Dataset(
        CustomCommand,
        (
            "id",
            "guild_id",
            "name",
            "template",
            "enabled",
            "cooldown_seconds",
            "cooldown_scope",
            "usage_count",
            "last_used_at",
            "author_id",
            "editor_ids",
            "created_at",
            "edited_at",
            "note",
        ),
        frozenset({"guild_id", "author_id", "editor_ids"}),
        with_aliases=True,
        names=(("guild_name", "guild", "guild_id"), ("author_name", "member", "author_id")),
    ),
    "cookie-balances": Dataset(
        CookieBalance,
        ("id", "guild_id", "member_id", "balance", "updated_at"),
        frozenset({"guild_id", "member_id"}),
        names=(("guild_name", "guild", "guild_id"), ("member_name", "member", "member_id")),
    ),
    "cookie-ledger": Dataset(
        CookieLedger,
        ("id", "guild_id", "giver_id", "receiver_id", "delta", "reason", "message_id", "created_at"),
        frozenset({"guild_id", "giver_id", "receiver_id", "message_id"}),
        names=(
            ("guild_name", "guild", "guild_id"),
            ("giver_name", "member", "giver_id"),
            ("receiver_name", "member", "receiver_id"),
        ),
    ),
    "timers": Dataset(
        TimedRole,
        (
            "id",
            "guild_id",
            "member_id",
            "role_id",
            "state",
            "expires_at",
            "paused_remaining",
            "pause_until",
            "pause_kind",
            "warn_channel_id",
            "warnings_sent",
            "issued_by_id",
            "created_at",
            "ended_at",
            "outcome",
            "outcome_detail",
        ),
        frozenset({"guild_id", "member_id", "role_id", "warn_channel_id", "issued_by_id"}),
        names=(
            ("guild_name", "guild", "guild_id"),
            ("member_name", "member", "member_id"),
            ("role_name", "role", "role_id"),
            ("warn_channel_name", "channel", "warn_channel_id"),
        ),
    ),
}


def export_rows(dataset: Dataset, queryset: QuerySet) -> Iterator[tuple]:
    """Every row of ``queryset`` as a tuple of ``dataset.header`` values, in id order, chunk by chunk."""
    last_id = 0
    while True:
        chunk = list(queryset.filter(pk__gt=last_id).order_by("pk").values_list(*dataset.columns)[:CHUNK_ROWS])
        if not chunk:
            return
        last_id = chunk[-1][0]
        full = len(chunk) == CHUNK_ROWS
        if dataset.names:
            names = _add_names(dataset, chunk)
        if dataset.with_aliases:
            chunk = _add_aliases(queryset.db, chunk)
        if dataset.names:
            chunk = [row + extra for row, extra in zip(chunk, names)]
        yield from chunk
        if not full:
            return


def _add_names(dataset: Dataset, chunk: list[tuple]) -> list[tuple]:
    """The directory's names for a chunk's ids (one query), in ``dataset.names`` order."""
    at = {column: index for index, column in enumerate(dataset.columns)}
    guild_at = at["guild_id"]
    wanted: dict[str, list] = {"guild_ids": [], "role_ids": [], "channel_ids": [], "members": []}
    for _, kind, column in dataset.names:
        for row in chunk:
            value = row[at[column]]
            if kind == "member":
                wanted["members"].append((row[guild_at], value))
            else:
                wanted[f"{kind}_ids"].append(value)
    found = directory_names(**wanted)
    label = {"guild": found.guild, "role": found.role, "channel": found.channel}
    return [
        tuple(
            found.member(row[guild_at], row[at[column]]) if kind == "member" else label[kind](row[at[column]])
            for _, kind, column in dataset.names
        )
        for row in chunk
    ]


def _add_aliases(alias: str, chunk: list[tuple]) -> list[tuple]:
    names: dict[int, list[str]] = {}
    found = (
        CommandAlias.objects.using(alias)
        .filter(command_id__in=[row[0] for row in chunk])
        .order_by("command_id", "name")
        .values_list("command_id", "name")
    )
    for command_id, name in found:
        names.setdefault(command_id, []).append(name)
    return [row + (names.get(row[0], []),) for row in chunk]


def _plain(value: Any) -> Any:
    if isinstance(value, (datetime, date)):
        return value.isoformat()
    if isinstance(value, timedelta):
        return int(value.total_seconds())
    return value


def json_line(dataset: Dataset, row: tuple) -> str:
    """One row as a JSON object on one line; Discord ids as strings."""
    record = {}
    for column, value in zip(dataset.header, row):
        if column in dataset.snowflakes and value is not None:
            value = [str(v) for v in value] if isinstance(value, list) else str(value)
        record[column] = _plain(value)
    return json.dumps(record, ensure_ascii=False, separators=(",", ":")) + "\n"


def csv_cell(value: Any) -> Any:
    """A value as a CSV cell that a spreadsheet shows as data, never runs as a formula."""
    value = _plain(value)
    if value is None:
        return ""
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, list):
        value = " ".join(str(v) for v in value)
    if isinstance(value, str) and value.startswith(FORMULA_STARTS):
        return "'" + value
    return value


class _Line:
    """A file-like object whose write() returns the line, for csv.writer in a generator."""

    def write(self, text: str) -> str:
        return text


def csv_lines(dataset: Dataset, rows: Iterable[tuple]) -> Iterator[str]:
    writer = csv.writer(_Line())
    yield writer.writerow(dataset.header)
    for row in rows:
        yield writer.writerow([csv_cell(value) for value in row])


def jsonl_lines(dataset: Dataset, rows: Iterable[tuple]) -> Iterator[str]:
    for row in rows:
        yield json_line(dataset, row)


@staff_member_required
@require_GET
def export_download(request, dataset: str, fmt: str):
    """Stream one dataset as CSV or JSON Lines, for one guild with ``?guild=<id>``."""
    spec = DATASETS.get(dataset)
    if spec is None or fmt not in CONTENT_TYPES:
        raise Http404("No such export.")
    if not request.user.has_perm(spec.permission):
        raise PermissionDenied
    queryset = spec.model._default_manager.using(lag_tolerant_alias()).all()
    guild = request.GET.get("guild", "").strip()
    if guild:
        guild_id = parse_int(guild, minimum=1, maximum=MAX_ID)
        if guild_id is None:
            return HttpResponseBadRequest("guild must be a numeric guild id (digits 0-9).", content_type="text/plain")
        queryset = queryset.filter(guild_id=guild_id)
        guild = str(guild_id)
    rows = export_rows(spec, queryset)
    lines = csv_lines(spec, rows) if fmt == "csv" else jsonl_lines(spec, rows)
    response = StreamingHttpResponse((line.encode() for line in lines), content_type=CONTENT_TYPES[fmt])
    stamp = timezone.now().strftime("%Y%m%d-%H%M%S")
    response["Content-Disposition"] = f'attachment; filename="guildhall-{dataset}{"-" + guild if guild else ""}-{stamp}.{fmt}"'
    response["Cache-Control"] = "no-store"
    logger.info("export of %s (%s, guild %s) by %s", dataset, fmt, guild or "all", request.user.get_username())
    return response
