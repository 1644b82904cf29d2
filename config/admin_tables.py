"""The admin base for tables of millions of rows.

Every list page costs O(page), not O(table): counts come from table statistics or are
capped (``config.admin_paging``), there are no filter facets and no column sorting, the
default order is an index's, and the search box matches indexed columns only.

The search box takes terms, not free text: a bare number is the scope's id (a guild,
or a timer for timer events), ``key:value`` narrows within that scope (``member:123``,
``role:456``, ``state:paused``), and for commands a bare word is a name prefix. Terms
other than the scope need the scope too, so that each search is one probe of a
composite index that starts with the guild id; a search that could only be answered
by reading the whole table is refused with a message saying what to add.

An id key with a ``names`` resolver also takes a name (``guild:"My Server"``,
``member:alice``, ``role:@booster``): the resolver turns the start of a name into ids
through the directory's indexes (the guild's first, then the others within those
guilds), and the list is filtered by those ids, so a name search probes the same
indexes as an id search.
"""

from __future__ import annotations

import shlex
from collections.abc import Callable, Sequence
from dataclasses import dataclass

from django.contrib import admin, messages
from django.contrib.admin.options import IS_POPUP_VAR, TO_FIELD_VAR
from django.contrib.admin.views.main import ERROR_FLAG, PAGE_VAR, SEARCH_VAR
from django.urls import reverse

from config.admin_paging import COUNT_CAP, EstimatedCountPaginator
from config.numbers import ASCII_INTEGER, parse_int

MAX_ID = 2**63 - 1  # BigIntegerField; Discord snowflakes fit
# What a list page reads from its query string: search, page, the invalid-lookup flag and popups.
LIST_PARAMETERS = frozenset({SEARCH_VAR, PAGE_VAR, ERROR_FLAG, IS_POPUP_VAR, TO_FIELD_VAR})


# (guild ids, or None for the scope itself; the typed name) -> the matching ids
NameResolver = Callable[[Sequence[int] | None, str], list[int]]


@dataclass(frozen=True)
class SearchKey:
    """One ``key:value`` term: an exact id, a lower-cased name prefix, or one of some choices.

    ``names``: an id key that also takes a name, resolved to ids (see the module docstring).
    """

    field: str
    kind: str = "id"  # "id" | "prefix" | "choice"
    choices: tuple[str, ...] = ()
    names: NameResolver | None = None


@dataclass(frozen=True)
class NameTerm:
    """A name typed where an id could go, resolved to ids when the search runs."""

    text: str


class SearchRefused(Exception):
    """A search term that is malformed or would need a table scan; the message says why."""


class LargeTableAdmin(admin.ModelAdmin):
    paginator = EstimatedCountPaginator
    show_full_result_count = False
    show_facets = admin.ShowFacets.NEVER  # a facet is a COUNT per filter choice
    list_per_page = 50
    sortable_by = ()  # sorting by a column without an index reads the whole table
    ordering = ("-pk",)  # the primary key: newest first, a backward index scan
    change_list_template = "admin/large_table/change_list.html"

    search_keys: dict[str, SearchKey] = {"guild": SearchKey("guild_id")}
    search_scope: str = "guild"  # what a bare number means; other keys need it
    # The order to use when the scope is searched, matching an index that starts with it.
    scoped_ordering: tuple[str, ...] | None = None
    export_dataset: str | None = None  # ops.exports dataset linked from the list page

    def __init__(self, model, admin_site) -> None:
        super().__init__(model, admin_site)
        if not self.search_fields:
            # Django shows the search box only when there are search fields.
            self.search_fields = tuple(f"={key.field}" for key in self.search_keys.values() if key.kind == "id")  # type: ignore[misc]
        if self.search_help_text is None:
            self.search_help_text = self._search_help()  # type: ignore[misc]

    # --- search ---------------------------------------------------------------------
    def _search_help(self) -> str:
        others = [
            f"{name}:<{'id or name' if key.names else 'id' if key.kind == 'id' else 'value'}>"
            if key.kind != "choice"
            else f"{name}:{'|'.join(key.choices)}"
            for name, key in self.search_keys.items()
            if name != self.search_scope
        ]
        text = f"A number is a {self.search_scope} id."
        if self._prefix_key():
            text += " A word is the start of a name in that guild."
        elif self.search_keys[self.search_scope].names is not None:
            text += f' A word is the start of a {self.search_scope}\'s name (in quotes if it has spaces: "My Server").'
        if others:
            text += f" Narrow it with {', '.join(others)}."
        return text

    def _prefix_key(self) -> str | None:
        return next((name for name, key in self.search_keys.items() if key.kind == "prefix"), None)

    def search_terms(self, search_term: str) -> dict[str, object]:
        """The search box's terms as ``{key: value}``, or SearchRefused."""
        terms: dict[str, object] = {}
        try:
            tokens = shlex.split(search_term)
        except ValueError:
            raise SearchRefused("A quote is not closed: put a name with spaces in a pair of quotes.") from None
        for token in tokens:
            name, sep, raw = token.partition(":")
            if not sep:
                bare = self.search_scope if ASCII_INTEGER.fullmatch(token) else self._prefix_key()
                if bare is None and self.search_keys[self.search_scope].names is not None:
                    bare = self.search_scope
                if bare is None:
                    raise SearchRefused(f"“{token[:40]}” is not an id. {self.search_help_text}")
                name, raw = bare, token
            name = name.lower()
            key = self.search_keys.get(name)
            if key is None:
                raise SearchRefused(f"“{name[:20]}” is not something this list can search by. {self.search_help_text}")
            if name in terms:
                raise SearchRefused(f"Give {name} only once.")
            terms[name] = self._term_value(name, key, raw)
        if terms and self.search_scope not in terms:
            raise SearchRefused(
                f"Add the {self.search_scope} id to search by {', '.join(terms)} "
                f"(for instance “<{self.search_scope} id> {next(iter(terms))}:…”): "
                "without it the search would read the whole table."
            )
        return terms

    @staticmethod
    def _term_value(name: str, key: SearchKey, raw: str) -> object:
        if key.kind == "id":
            value = parse_int(raw, minimum=1, maximum=MAX_ID)
            if value is None and key.names is not None and raw.strip() and not ASCII_INTEGER.fullmatch(raw):
                return NameTerm(raw.strip()[:100])
            if value is None:
                raise SearchRefused(f"{name} must be a numeric id (digits 0-9), not “{raw[:40]}”.")
            return value
        if key.kind == "choice":
            if raw.lower() not in key.choices:
                raise SearchRefused(f"{name} must be one of {', '.join(key.choices)}.")
            return raw.lower()
        if not raw:
            raise SearchRefused(f"Give {name} a value.")
        return raw.lower()

    def _request_terms(self, request) -> dict[str, object]:
        try:
            return self.search_terms(request.GET.get(SEARCH_VAR, ""))
        except SearchRefused:
            return {}

    def get_search_results(self, request, queryset, search_term):
        try:
            terms = self.search_terms(search_term)
        except SearchRefused as exc:
            messages.error(request, str(exc))
            return queryset.none(), False
        lookups: dict[str, object] = {}
        scope = terms.get(self.search_scope)
        guild_ids: list[int] = [scope] if isinstance(scope, int) else []
        # The scope first: the other names are looked up within the guilds it names.
        for name in sorted(terms, key=lambda n: n != self.search_scope):
            key, value = self.search_keys[name], terms[name]
            if isinstance(value, NameTerm):
                assert key.names is not None
                ids = key.names(None if name == self.search_scope else guild_ids, value.text)
                if not ids:
                    messages.warning(request, f"No {name} whose name starts with “{value.text[:40]}” is known to the bot.")
                    return queryset.none(), False
                if name == self.search_scope:
                    guild_ids = ids
                lookups[key.field + "__in"] = ids
            else:
                lookups[key.field + ("__startswith" if key.kind == "prefix" else "")] = value
        return queryset.filter(**lookups), False

    def get_ordering(self, request):
        if self.scoped_ordering and self.search_scope in self._request_terms(request):
            return self.scoped_ordering
        return super().get_ordering(request)

    # --- actions and list page ------------------------------------------------------
    def get_actions(self, request):
        # Its confirmation page lists every selected row: not at a million rows.
        actions = super().get_actions(request)
        actions.pop("delete_selected", None)
        return actions

    def changelist_links(self, request, terms: dict[str, object]) -> list[tuple[str, str]]:
        """(label, url) buttons above the list: the exports, for the searched guild if any."""
        if not self.export_dataset:
            return []
        query = f"?guild={terms['guild']}" if isinstance(terms.get("guild"), int) else ""
        return [
            (f"Export {label}", reverse("exports:download", kwargs={"dataset": self.export_dataset, "fmt": fmt}) + query)
            for label, fmt in (("CSV", "csv"), ("JSON", "jsonl"))
        ]

    def changelist_view(self, request, extra_context=None):
        ignored = sorted(set(request.GET) - LIST_PARAMETERS)
        if ignored:
            # Other parameters are column lookups or sorts: unindexed scans at a million rows, and
            # Django's admin lets some of them crash (a duration lookup fails only when the list runs).
            query = request.GET.copy()
            for name in ignored:
                del query[name]
            query._mutable = False
            request.GET = query
            messages.warning(request, f"This list is narrowed with the search box only; ignored: {', '.join(ignored)[:200]}.")
        context = {
            "large_table_links": self.changelist_links(request, self._request_terms(request)),
            "count_cap": COUNT_CAP,
            **(extra_context or {}),
        }
        return super().changelist_view(request, extra_context=context)
