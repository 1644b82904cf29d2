"""Cursor (keyset) pagination: each page is an index range scan after the last row seen.

No OFFSET and no COUNT(*): page 1,000 costs what page 1 costs. The cursor is the last
row's sort key, signed so that a client can neither forge nor tamper with it, and bound
to the ordering it came from. The ordering's fields must be non-null and together unique
(end with the primary key when the others are not), and an index should cover them
after the equality filters for the scan to be a range scan.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from datetime import datetime
from typing import Any, Generic, TypeVar

from django.core import signing
from django.db.models import Model, Q, QuerySet

from config.errors import ApplicationError

DEFAULT_LIMIT = 50
MAX_LIMIT = 200
_SALT = "guildhall.pagination"
_INT64 = (-(2**63), 2**63 - 1)

T = TypeVar("T", bound=Model)


class CursorInvalid(ApplicationError):
    """The cursor was not one this API handed out for this list."""


@dataclass(frozen=True)
class CursorPage(Generic[T]):
    """One page of rows and the cursor of the next page (None on the last page)."""

    items: list[T]
    next_cursor: str | None


def _keys(order: Sequence[str]) -> list[tuple[str, bool]]:
    """``["-balance", "member_id"]`` → ``[("balance", True), ("member_id", False)]``."""
    return [(name.lstrip("-"), name.startswith("-")) for name in order]


def _salt(model: type[Model], order: Sequence[str]) -> str:
    return f"{_SALT}:{model._meta.label_lower}:{','.join(order)}"


def _field(model: type[Model], name: str):
    return model._meta.pk if name == "pk" else model._meta.get_field(name)


def _plain(value: Any) -> Any:
    return value.isoformat() if isinstance(value, datetime) else value


def cursor_encode(model: type[Model], order: Sequence[str], row: Model) -> str:
    """The opaque cursor that continues after ``row`` in ``order``."""
    values = [_plain(getattr(row, name)) for name, _ in _keys(order)]
    return signing.dumps(values, salt=_salt(model, order), compress=True)


def cursor_decode(model: type[Model], order: Sequence[str], cursor: str) -> list[Any]:
    """The sort key a cursor carries, as database values; CursorInvalid when it is not ours."""
    refused = CursorInvalid("That cursor is not valid for this list; start again without one.")
    try:
        values = signing.loads(cursor, salt=_salt(model, order))
    except (signing.BadSignature, ValueError, TypeError):
        raise refused from None
    keys = _keys(order)
    if not isinstance(values, list) or len(values) != len(keys):
        raise refused
    decoded = []
    for (name, _), value in zip(keys, values):
        try:
            python = _field(model, name).to_python(value)
        except Exception:
            raise refused from None
        if python is None or (isinstance(python, int) and not _INT64[0] <= python <= _INT64[1]):
            raise refused
        decoded.append(python)
    return decoded


def _after(order: Sequence[str], values: Sequence[Any]) -> Q:
    """Rows strictly after ``values`` in ``order``: (a > x) OR (a = x AND b > y) OR …

    The leading ``a >= x`` is implied by the rest; it is spelt out so that the database
    turns it into the bounds of an index range scan.
    """
    keys = _keys(order)
    after: Q | None = None
    for position, (name, descending) in enumerate(keys):
        clause = Q(**{f"{name}__{'lt' if descending else 'gt'}": values[position]})
        for earlier in range(position):
            clause &= Q(**{keys[earlier][0]: values[earlier]})
        after = clause if after is None else after | clause
    first, descending = keys[0]
    bound = Q(**{f"{first}__{'lte' if descending else 'gte'}": values[0]})
    return bound if after is None else bound & after


def page_query(queryset: QuerySet[T], *, order: Sequence[str], cursor: str | None, limit: int) -> QuerySet[T]:
    """The query that reads the page after ``cursor``: ``limit + 1`` rows, to learn whether more follow."""
    rows = queryset.order_by(*order)
    if cursor:
        rows = rows.filter(_after(order, cursor_decode(queryset.model, order, cursor)))
    return rows[: limit + 1]


def paginate(queryset: QuerySet[T], *, order: Sequence[str], cursor: str | None, limit: int = DEFAULT_LIMIT) -> CursorPage[T]:
    """The page of ``queryset`` in ``order`` that follows ``cursor`` (the first page without one)."""
    if not 1 <= limit <= MAX_LIMIT:
        raise CursorInvalid(f"limit is from 1 to {MAX_LIMIT}.")
    found = list(page_query(queryset, order=order, cursor=cursor, limit=limit))
    if len(found) <= limit:
        return CursorPage(items=found, next_cursor=None)
    items = found[:limit]
    return CursorPage(items=items, next_cursor=cursor_encode(queryset.model, order, items[-1]))
