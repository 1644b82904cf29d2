"""How each column's values are compared and carried between SQLite and PostgreSQL.

The two engines hand back different Python values for one stored value (SQLite's raw
``'2026-12-01 10:00:00'``, 0/1 and microsecond integers; PostgreSQL's aware datetimes,
booleans and timedeltas). ``canonical`` maps either to one form, so that a checksum is
computed the same way on both sides; ``to_sqlite``/``to_postgresql`` map a value read
from the other engine to what the target stores, in the forms Django itself writes.
"""

from __future__ import annotations

import functools
import json
from collections.abc import Callable
from datetime import UTC, datetime, timedelta
from decimal import Decimal
from typing import Any

from django.db import models

Convert = Callable[[Any], Any]
KINDS = {
    "BooleanField": "bool",
    "NullBooleanField": "bool",
    "DateTimeField": "datetime",
    "DateField": "date",
    "TimeField": "time",
    "DurationField": "duration",
    "JSONField": "json",
    "UUIDField": "uuid",
    "DecimalField": "decimal",
    "FloatField": "float",
    "BinaryField": "bytes",
}


def column_kind(field: models.Field) -> str:
    """The kind of value a column holds ("plain" for integers and text, which need nothing)."""
    while field.is_relation and getattr(field, "target_field", None) is not None:
        field = field.target_field  # type: ignore[attr-defined]  # a foreign key holds what its target column holds
    return KINDS.get(field.get_internal_type(), "plain")


def _datetime(value: Any) -> str:
    if isinstance(value, str):
        n = len(value)
        if value[10:11] == " ":
            # PostgreSQL's text in a UTC session: "+00" at the end, trailing zeros of the fraction dropped.
            if value.endswith("+00"):
                if n == 22 or value[19:20] == ".":
                    body = value[:-3]
                    return body if n == 22 else body.ljust(26, "0")
            # Django's own SQLite form (naive UTC, microseconds only when non-zero) is kept as it is.
            elif n == 19 or (n == 26 and value[19] == "." and value[20:] != "000000"):
                return value
        value = datetime.fromisoformat(value)
    if value.tzinfo is not None:
        value = value.astimezone(UTC).replace(tzinfo=None)
    return str(value)


def _date_or_time(value: Any) -> str:
    return value if isinstance(value, str) else value.isoformat()


def _duration(value: Any) -> int:
    if isinstance(value, int):
        return value
    return (value.days * 86_400 + value.seconds) * 1_000_000 + value.microseconds


@functools.lru_cache(maxsize=16_384)
def _json_text(value: str) -> str:
    # Cached: a JSON column holds few distinct values ("[]", "[60, 10]") over a million rows.
    return json.dumps(json.loads(value), sort_keys=True, separators=(",", ":"), ensure_ascii=False)


def _json(value: Any) -> str:
    if isinstance(value, str):
        return _json_text(value)
    return json.dumps(value, sort_keys=True, separators=(",", ":"), ensure_ascii=False)


def _uuid(value: Any) -> str:
    return value.replace("-", "").lower() if isinstance(value, str) else value.hex


def _decimal(places: int | None) -> Convert:
    step = Decimal(1).scaleb(-places) if places is not None else None

    def canonical(value: Any) -> str:
        number = Decimal(repr(value) if isinstance(value, float) else str(value))
        return format(number.quantize(step) if step is not None else number.normalize(), "f")

    return canonical


_CANONICAL: dict[str, Convert] = {
    "bool": bool,
    "datetime": _datetime,
    "date": _date_or_time,
    "time": _date_or_time,
    "duration": _duration,
    "json": _json,
    "uuid": _uuid,
    "float": float,
    "bytes": bytes,
}
_TO_SQLITE: dict[str, Convert] = {
    "datetime": _datetime,
    "date": _date_or_time,
    "time": _date_or_time,
    "duration": _duration,
    "json": lambda v: v if isinstance(v, str) else json.dumps(v),
    "uuid": _uuid,
    "decimal": str,
    "bytes": bytes,
}
_TO_POSTGRESQL: dict[str, Convert] = {
    "bool": bool,
    "duration": lambda v: timedelta(microseconds=v) if isinstance(v, int) else v,
}


def canonical(field: models.Field) -> Convert | None:
    """The function that maps the column's value, read from either engine, to its compared form."""
    kind = column_kind(field)
    if kind == "decimal":
        return _decimal(getattr(field, "decimal_places", None))
    return _CANONICAL.get(kind)


def converter(field: models.Field, *, source_vendor: str, target_vendor: str) -> Convert | None:
    """The function that maps a value read from the source to what the target stores (None: as it is)."""
    if source_vendor == target_vendor:
        return None  # same engine: the stored form goes across untouched
    table = _TO_SQLITE if target_vendor == "sqlite" else _TO_POSTGRESQL
    return table.get(column_kind(field))
