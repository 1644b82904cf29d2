"""Names, not ids, wherever Django's admin shows an object as text.

Django's admin puts ``str(obj)`` in a change page's title and breadcrumb, its history
page, the "was added/changed successfully" message, both delete confirmations (the object
and every related row it would take with it) and the recent-actions log. The models'
``__str__`` name their ids through ``guilds.models.named``, which uses the names attached
to the object and falls back to the id; :func:`names_attach` attaches them, one directory
query for all the objects of a page, and :class:`NamedObjects` calls it on each of those
paths.
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass, field
from typing import Any

from django.contrib.admin.utils import NestedObjects, quote
from django.db import models, router
from django.urls import NoReverseMatch, reverse
from django.utils.html import format_html
from django.utils.text import capfirst

from guilds.models import names_attached
from guilds.selectors import Names, directory_names

MEMBER = "member"


def _no_ids() -> dict[str, list]:
    return {"guild_ids": [], "role_ids": [], "channel_ids": [], "members": []}


def wanted_ids(rows: Iterable[Any], columns: Iterable[Any]) -> dict[str, list]:
    """The ids that these rows show in these ``guilds.admin_names.named`` columns, as ``directory_names`` takes them."""
    wanted = _no_ids()
    specs = [c.directory for c in columns if hasattr(c, "directory")]
    for row in rows:
        for name, kind, guild_field in specs:
            value = getattr(row, name, None)
            if kind == MEMBER:
                wanted["members"].append((getattr(row, guild_field, None), value))
            else:
                wanted[f"{kind}_ids"].append(value)
    return wanted


@dataclass
class _Wanted(Names):
    """Names that answer nothing and note each id asked for: what a ``__str__`` shows."""

    ids: dict[str, list] = field(default_factory=_no_ids)

    def guild(self, guild_id: int | None) -> str:
        self.ids["guild_ids"].append(guild_id)
        return ""

    def role(self, role_id: int | None) -> str:
        self.ids["role_ids"].append(role_id)
        return ""

    def channel(self, channel_id: int | None) -> str:
        self.ids["channel_ids"].append(channel_id)
        return ""

    def member(self, guild_id: int | None, user_id: int | None) -> str:
        self.ids["members"].append((guild_id, user_id))
        return ""


def _with_loaded_relations(objs: Iterable[models.Model]) -> list[models.Model]:
    """The objects and the related rows already loaded with them (``select_related``, a formset's parent)."""
    found: dict[int, models.Model] = {}
    todo = list(objs)
    while todo:
        obj = todo.pop()
        if id(obj) not in found:
            found[id(obj)] = obj
            todo.extend(r for r in obj._state.fields_cache.values() if isinstance(r, models.Model))
    return list(found.values())


def names_attach(objs: Iterable[models.Model], *, also: dict[str, list] | None = None) -> Names:
    """Attach to each object (and the related rows loaded with it) the names its ``__str__`` shows, in one query.

    The ids are the ones ``__str__`` asks for (it runs once against :class:`_Wanted`
    first, so a model declares nothing beyond its ``__str__``), plus ``also``
    (:func:`wanted_ids` of the page's columns). No ids, no query.
    """
    objs = list(objs)
    rows = _with_loaded_relations(objs)
    wanted = _Wanted()
    for row in rows:
        row._directory_names = wanted  # type: ignore[attr-defined]
    for obj in objs:
        str(obj)
    for key, values in (also or {}).items():
        wanted.ids[key].extend(values)
    names = directory_names(**wanted.ids)
    for row in rows:
        row._directory_names = names  # type: ignore[attr-defined]
    return names


class _NamedNestedObjects(NestedObjects):
    """Django's deletion collector, which names every row it found (one query) before they are listed."""

    def nested(self, format_callback=None):
        listed = [obj for targets in self.edges.values() for obj in targets]
        names_attach([obj for obj in [*listed, *self.protected] if not names_attached(obj)])
        return super().nested(format_callback)


def deleted_objects_named(objs: list[models.Model], request, admin_site) -> tuple[list, dict, set, list]:
    """``django.contrib.admin.utils.get_deleted_objects`` (Django 5.2) with :class:`_NamedNestedObjects`.

    Django's function builds its collector inside, so this is that function again with
    the one class changed: the confirmation lists related rows by name too (a command's
    cooldowns per member and channel), with one directory query for all of them.
    """
    if not objs:
        return [], {}, set(), []
    collector = _NamedNestedObjects(using=router.db_for_write(objs[0]._meta.model), origin=objs)
    collector.collect(objs)
    perms_needed: set = set()

    def format_callback(obj):
        opts = obj._meta
        no_edit_link = "%s: %s" % (capfirst(opts.verbose_name), obj)
        if not admin_site.is_registered(obj.__class__):
            return no_edit_link  # no admin, or edited inline
        if not admin_site.get_model_admin(obj.__class__).has_delete_permission(request, obj):
            perms_needed.add(opts.verbose_name)
        try:
            admin_url = reverse(f"{admin_site.name}:{opts.app_label}_{opts.model_name}_change", None, (quote(obj.pk),))
        except NoReverseMatch:
            return no_edit_link
        return format_html('{}: <a href="{}">{}</a>', capfirst(opts.verbose_name), admin_url, obj)

    to_delete = collector.nested(format_callback)
    protected = [format_callback(obj) for obj in collector.protected]
    # (django-stubs types model_objs' keys as str; they are the model classes.)
    model_count = {model._meta.verbose_name_plural: len(rows) for model, rows in collector.model_objs.items()}  # type: ignore[attr-defined]
    return to_delete, model_count, perms_needed, protected


class NamedObjects:
    """ModelAdmin mixin: the objects Django's admin shows as text are named from the directory.

    The change, delete and history pages read their object through ``get_object``; the
    add/change messages and the log follow ``log_addition`` / ``log_change`` (after the
    save, so a new row's ids are named); both delete confirmations go through
    ``get_deleted_objects``, whose queryset keeps the named rows for the bulk action's log.
    The admin's ``named`` columns are looked up in the same query, for the change page's
    read-only fields.
    """

    def _names_attach(self, objs: list[models.Model]) -> None:
        columns = [c for c in (getattr(type(self), n, None) for n in dir(type(self))) if hasattr(c, "directory")]
        names_attach(objs, also=wanted_ids(objs, columns))

    def get_object(self, request, object_id, from_field=None):
        obj = super().get_object(request, object_id, from_field)  # type: ignore[misc]
        if obj is not None:
            self._names_attach([obj])
        return obj

    def log_addition(self, request, obj, message):
        self._names_attach([obj])
        return super().log_addition(request, obj, message)  # type: ignore[misc]

    def log_change(self, request, obj, message):
        self._names_attach([obj])
        return super().log_change(request, obj, message)  # type: ignore[misc]

    def get_deleted_objects(self, objs, request):
        rows = list(objs)  # a queryset caches these very rows: the bulk action logs them next
        self._names_attach([row for row in rows if not names_attached(row)])
        return deleted_objects_named(rows, request, self.admin_site)  # type: ignore[attr-defined]
