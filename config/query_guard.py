"""Query strings that Django's own views answer with a 500 instead of a refusal, made harmless.

- A NUL character: PostgreSQL refuses it in any text parameter, so an admin search for
  ``%00`` (Django's own user list included) fails inside the database driver. No query
  parameter of ours means anything with one, so such a parameter is dropped.
- An empty ``?_to_field=`` on an admin change or delete page (``get_field("")``).
- An admin add page's prefill (``?next_run=…``) for a date, time or duration field, whose
  widget can't show text.
- An admin list filtered by a value its column can't hold (``?ip_address=²``): Django
  passes it to the database, which fails when the page renders. Such a filter is dropped.

The last two are conveniences for links the admin itself builds, so dropping the value
loses nothing; every other parameter reaches the view unchanged.
"""

from __future__ import annotations

from collections.abc import Callable

from django.core.exceptions import ValidationError
from django.db import models
from django.http import HttpRequest, HttpResponse, QueryDict
from django.urls import Resolver404, ResolverMatch, resolve

TO_FIELD = "_to_field"
_UNPREFILLABLE = (models.DateField, models.TimeField, models.DurationField)  # DateTimeField is a DateField


class QueryGuard:
    """Middleware: drop the query values that would crash Django's views."""

    def __init__(self, get_response: Callable[[HttpRequest], HttpResponse]) -> None:
        self.get_response = get_response

    def __call__(self, request: HttpRequest) -> HttpResponse:
        if request.GET:
            cleaned = _cleaned(request)
            if cleaned is not None:
                cleaned._mutable = False
                request.GET = cleaned  # type: ignore[assignment]  # a QueryDict made immutable just above
        return self.get_response(request)


def _cleaned(request: HttpRequest) -> QueryDict | None:
    """A copy of the query without the crashing values, or None when there are none."""
    query = request.GET.copy()
    for name in [name for name, values in query.lists() if "\x00" in name or any("\x00" in v for v in values)]:
        del query[name]
    match = _admin_match(request)
    model_admin = getattr(match.func, "model_admin", None) if match is not None else None
    if match is not None and model_admin is not None and request.method == "GET":
        if TO_FIELD in query and not query[TO_FIELD]:
            del query[TO_FIELD]
        if (match.url_name or "").endswith("_add"):
            for field in model_admin.model._meta.fields:
                if isinstance(field, _UNPREFILLABLE):
                    query.pop(field.name, None)
        if (match.url_name or "").endswith("_changelist"):
            for field in model_admin.model._meta.fields:
                value = query.get(field.name)
                if isinstance(value, str) and not _valid(field, value):
                    del query[field.name]
    return query if query != request.GET else None


def _valid(field: models.Field, value: str) -> bool:
    try:
        field.clean(value, None)
    except ValidationError:
        return False
    except Exception:  # a third-party validator that fails some other way refuses the value too
        return False
    return True


def _admin_match(request: HttpRequest) -> ResolverMatch | None:
    """The URL match of an admin page (cheap: only paths under /admin/ are resolved)."""
    if not request.path_info.startswith("/admin/"):
        return None
    try:
        return resolve(request.path_info)
    except Resolver404:
        return None
