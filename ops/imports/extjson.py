"""Reading ``mongoexport`` output: one document per line or one JSON array, relaxed or canonical.

Which form a file is in is told from the file itself (its first non-blank character is
``[`` for ``--jsonArray``). MongoDB Extended JSON wrappers are decoded to plain values:
``{"$oid"}`` to its hex string, ``{"$numberInt"}``/``{"$numberLong"}`` to int,
``{"$numberDouble"}`` to float, ``{"$numberDecimal"}`` to Decimal, ``{"$date"}`` to an
aware datetime.
"""

from __future__ import annotations

import json
from collections.abc import Iterator
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from decimal import Decimal, InvalidOperation
from pathlib import Path
from typing import Any

from ops.imports.report import ImportRefused

_EPOCH = datetime(1970, 1, 1, tzinfo=UTC)


@dataclass(frozen=True)
class Document:
    """One document, or why it could not be read; ``where`` is "line 7" or "document 7"."""

    where: str
    value: Any = None
    error: str = ""


class ExtJsonInvalid(ValueError):
    pass


def documents_read(path: Path | str) -> Iterator[Document]:
    """The documents of a mongoexport file in order, a bad one as a Document with its error."""
    try:
        handle = open(path, encoding="utf-8-sig")  # noqa: SIM115 (closed below; lines are streamed)
    except OSError as exc:
        raise ImportRefused(f"Can't read {path}: {exc.strerror}.") from None
    with handle:
        first = _first_char(handle)
        if first == "[":
            yield from _array_documents(handle.read(), path)
            return
        for number, line in enumerate(handle, start=1):
            if line.strip():
                yield _decoded(f"line {number}", line)


def _first_char(handle: Any) -> str:
    while True:
        char = handle.read(1)
        if not char or not char.isspace():
            handle.seek(0)
            return char


def _array_documents(text: str, path: Path | str) -> Iterator[Document]:
    try:
        items = json.loads(text)
    except json.JSONDecodeError as exc:
        raise ImportRefused(f"{path} starts as a JSON array but is not valid JSON (line {exc.lineno}: {exc.msg}).") from None
    if not isinstance(items, list):
        raise ImportRefused(f"{path} is neither one document per line nor a JSON array.")
    for number, item in enumerate(items, start=1):
        yield _value_decoded(f"document {number}", item)


def _decoded(where: str, line: str) -> Document:
    try:
        raw = json.loads(line)
    except json.JSONDecodeError as exc:
        return Document(where, error=f"not valid JSON ({exc.msg} at column {exc.colno})")
    return _value_decoded(where, raw)


def _value_decoded(where: str, raw: Any) -> Document:
    if not isinstance(raw, dict):
        return Document(where, error="not a document (a JSON object)")
    try:
        return Document(where, value=extjson_decode(raw))
    except ExtJsonInvalid as exc:
        return Document(where, error=str(exc))


def extjson_decode(value: Any) -> Any:
    """The plain value of a relaxed or canonical Extended JSON value."""
    if isinstance(value, list):
        return [extjson_decode(v) for v in value]
    if not isinstance(value, dict):
        return value
    if len(value) == 1:
        ((key, inner),) = value.items()
        if key in _WRAPPERS:
            return _WRAPPERS[key](inner)
    return {k: extjson_decode(v) for k, v in value.items()}


def _oid(inner: Any) -> str:
    if not isinstance(inner, str) or len(inner) != 24:
        raise ExtJsonInvalid(f"$oid {inner!r} is not 24 hex digits")
    return inner


def _int(inner: Any) -> int:
    if isinstance(inner, str) and inner.lstrip("-").isdigit():
        return int(inner)
    raise ExtJsonInvalid(f"{inner!r} is not a whole number")


def _double(inner: Any) -> float:
    try:
        return float(inner)
    except (TypeError, ValueError):
        raise ExtJsonInvalid(f"$numberDouble {inner!r} is not a number") from None


def _decimal(inner: Any) -> Decimal:
    try:
        return Decimal(str(inner))
    except InvalidOperation:
        raise ExtJsonInvalid(f"$numberDecimal {inner!r} is not a number") from None


def _date(inner: Any) -> datetime:
    inner = extjson_decode(inner)  # canonical: {"$numberLong": "…"} milliseconds
    if isinstance(inner, int):
        return _EPOCH + timedelta(milliseconds=inner)
    if isinstance(inner, str):
        try:
            return datetime.fromisoformat(inner.replace("Z", "+00:00"))
        except ValueError:
            pass
    raise ExtJsonInvalid(f"$date {inner!r} is not a date")


_WRAPPERS = {
    "$oid": _oid,
    "$numberInt": _int,
    "$numberLong": _int,
    "$numberDouble": _double,
    "$numberDecimal": _decimal,
    "$date": _date,
}
