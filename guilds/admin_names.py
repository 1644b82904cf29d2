"""Names next to ids on every admin page: columns, the one query per page, and search by name.

A ModelAdmin mixes in :class:`NamedColumns` and declares columns with :func:`named`
(``member = named("member_id", MEMBER)``); the list page then asks the directory for all
of its rows' names in one query (``guilds.selectors.directory_names``) after the page's
rows are read, never a query per row. On a change page the same column is a read-only
field, named in the page's one query (``NamedObjects``). The resolvers (``guild_names``, ``member_names``, …) plug
into ``config.admin_tables.SearchKey(names=…)`` so the search box takes names.

Objects are named too: Django's admin puts ``str(obj)`` in a change page's title and
breadcrumb, its history page, the "was added/changed" message, the delete confirmations
(single and bulk) and the recent-actions log: ``NamedColumns`` is also a
``guilds.admin_titles.NamedObjects``, which names those objects as well.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

from django.contrib import messages
from django.utils.html import format_html

from guilds.admin_titles import NamedObjects, names_attach, wanted_ids
from guilds.selectors import (
    Names,
    channel_ids_named,
    directory_names,
    guild_ids_named,
    member_ids_named,
    role_ids_named,
)

GUILD, ROLE, CHANNEL, MEMBER = "guild", "role", "channel", "member"


def named(field: str, kind: str, description: str | None = None, *, guild_field: str = "guild_id") -> Any:
    """An admin column showing ``field``'s name ("Alice (@alice)", "@Booster", "#general") over its id."""

    def column(admin: Any, obj: Any) -> str:
        value = getattr(obj, field)
        if value is None:
            return "-"
        names: Names | None = getattr(obj, "_directory_names", None)
        if names is None:  # a change page: just this row
            names = directory_names(**wanted_ids([obj], [column]))
        label = _label(names, kind, obj, field, guild_field)
        if not label:
            return str(value)
        return format_html('{}<br><span class="quiet">{}</span>', label, value)

    column.short_description = description or kind  # type: ignore[attr-defined]
    column.directory = (field, kind, guild_field)  # type: ignore[attr-defined]
    return column


def _label(names: Names, kind: str, obj: Any, field: str, guild_field: str) -> str:
    value = getattr(obj, field)
    if kind == MEMBER:
        return names.member(getattr(obj, guild_field), value)
    return {GUILD: names.guild, ROLE: names.role, CHANNEL: names.channel}[kind](value)


class NamedColumns(NamedObjects):
    """ModelAdmin mixin: the ``named`` columns of a list page, and its rows' own names, are looked up in one query."""

    def _named_columns(self, request) -> list[Any]:
        columns = []
        for entry in self.get_list_display(request):  # type: ignore[attr-defined]
            column = getattr(type(self), entry, None) if isinstance(entry, str) else entry
            if column is not None and hasattr(column, "directory"):
                columns.append(column)
        return columns

    def get_changelist(self, request, **kwargs):
        base = super().get_changelist(request, **kwargs)  # type: ignore[misc]
        admin = self

        class NamedChangeList(base):  # type: ignore[valid-type,misc]
            def get_results(self, request) -> None:
                super().get_results(request)
                rows: list[Any] = list(self.result_list)  # type: ignore[has-type]
                self.result_list = rows
                # Also the ids each row's __str__ names (a timer event's timer); a page with no ids makes no query.
                names_attach(rows, also=wanted_ids(rows, admin._named_columns(request)))

        return NamedChangeList


# --- search resolvers (config.admin_tables.SearchKey(names=…)) -------------------------------
def guild_names(guild_ids: Sequence[int] | None, text: str) -> list[int]:
    return guild_ids_named(text)


def member_names(guild_ids: Sequence[int] | None, text: str) -> list[int]:
    return member_ids_named(guild_ids=guild_ids or (), text=text)


def role_names(guild_ids: Sequence[int] | None, text: str) -> list[int]:
    return role_ids_named(guild_ids=guild_ids or (), text=text)


def channel_names(guild_ids: Sequence[int] | None, text: str) -> list[int]:
    return channel_ids_named(guild_ids=guild_ids or (), text=text)


class GuildNameSearch:
    """For the small per-guild tables (settings, allowed roles): a search that is not a number is a guild name."""

    def get_search_results(self, request, queryset, search_term):
        text = search_term.strip().strip('"')
        if not text or text.isdigit():
            return super().get_search_results(request, queryset, search_term)  # type: ignore[misc]
        ids = guild_ids_named(text)
        if not ids:
            messages.warning(request, f"No guild whose name starts with “{text[:40]}” is known to the bot.")
        return queryset.filter(guild_id__in=ids), False
