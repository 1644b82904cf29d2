"""Names for the API's and the exports' rows: one directory query per page, read by the schemas.

A list endpoint calls ``attach_names(page.items, ...)`` once; each schema's resolver then
reads ``name_of(obj, …)`` from what was attached. A single object (a GET of one row, the
answer to a change) has nothing attached and is named with one query of its own.
"""

from __future__ import annotations

from collections.abc import Iterable
from typing import Any

from guilds.selectors import Names, directory_names

ATTR = "_directory_names"
# (kind, field holding the id): kind is guild, role, channel or member (named within guild_id).
Spec = Iterable[tuple[str, str]]


def _wanted(items: Iterable[Any], spec: list[tuple[str, str]], guild_id: int | None) -> dict[str, list]:
    wanted: dict[str, list] = {"guild_ids": [], "role_ids": [], "channel_ids": [], "members": []}
    for item in items:
        for kind, field in spec:
            value = getattr(item, field, None)
            if kind == "member":
                wanted["members"].append((guild_id or getattr(item, "guild_id", None), value))
            else:
                wanted[f"{kind}_ids"].append(value)
    return wanted


def attach_names(items: list[Any], spec: Spec, *, guild_id: int | None = None) -> list[Any]:
    """Look up the names of every id ``spec`` names in ``items`` (one query) and attach them."""
    spec = list(spec)
    names = directory_names(**_wanted(items, spec, guild_id))
    for item in items:
        try:
            setattr(item, ATTR, names)
        except AttributeError:  # frozen dataclasses and slots: named one by one when read
            pass
    return items


def name_of(obj: Any, kind: str, field: str, *, spec: Spec = (), guild_id: int | None = None) -> str | None:
    """The label of ``obj.<field>`` ("Alice (@alice)", "@Booster", "#general", "My Server"), or None if unknown.

    With nothing attached, the names of the whole ``spec`` are looked up (one query) and
    attached, so a schema's other name fields reuse them.
    """
    value = getattr(obj, field, None)
    if not value:
        return None
    names: Names | None = getattr(obj, ATTR, None)
    if names is None:
        names = directory_names(**_wanted([obj], list(spec) or [(kind, field)], guild_id))
        try:
            setattr(obj, ATTR, names)
        except AttributeError:
            pass
    if kind == "member":
        label = names.member(guild_id or getattr(obj, "guild_id", None), value)
    else:
        label = {"guild": names.guild, "role": names.role, "channel": names.channel}[kind](value)
    return label or None
