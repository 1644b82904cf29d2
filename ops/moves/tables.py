"""What a move copies: every table of every installed app, parents first, each with a decision.

The list comes from the models (so migrations added by anyone are picked up) and is
checked against the tables the source really has; a table no model owns is reported,
never dropped silently.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

from django.apps import apps
from django.db import models
from django.db.backends.base.base import BaseDatabaseWrapper
from django.db.migrations.recorder import MigrationRecorder

from ops.moves.errors import MoveRefused
from ops.moves.values import Convert, canonical, converter

MIGRATIONS_TABLE = MigrationRecorder.Migration._meta.db_table
# Written by ``migrate`` itself (post_migrate), so a freshly migrated target counts as empty.
MIGRATE_WRITES = frozenset({MIGRATIONS_TABLE, "django_content_type", "auth_permission"})
_AUTO_FIELDS = ("AutoField", "BigAutoField", "SmallAutoField")


@dataclass
class TableSpec:
    """One table to copy: its columns in order, how to order and compare its rows."""

    table: str
    model_labels: list[str]
    fields: list[models.Field]
    pk_columns: list[str]
    text_pk: bool
    auto_pk_column: str | None
    parents: set[str] = field(default_factory=set)
    self_referencing: bool = False

    @property
    def pk_index(self) -> int:
        return self.columns.index(self.pk_columns[0])

    @property
    def columns(self) -> list[str]:
        return [str(f.column) for f in self.fields]

    def canonicals(self) -> list[tuple[int, Convert]]:
        """(column index, function) for the columns whose compared form differs from the read value."""
        return [(i, fn) for i, f in enumerate(self.fields) if (fn := canonical(f)) is not None]

    def converters(self, source_vendor: str, target_vendor: str) -> list[tuple[int, Convert]]:
        """(column index, function) for the columns the target stores differently from the source."""
        pairs = ((i, converter(f, source_vendor=source_vendor, target_vendor=target_vendor)) for i, f in enumerate(self.fields))
        return [(i, fn) for i, fn in pairs if fn is not None]


@dataclass
class Decision:
    """What happens to one table of the source, said in a line of the plan."""

    table: str
    action: str  # "copy", "migrate" or "skip"
    note: str = ""


def model_tables() -> dict[str, TableSpec]:
    """Every concrete table of every installed app (m2m tables included), keyed by name."""
    specs: dict[str, TableSpec] = {}
    for model in apps.get_models(include_auto_created=True):
        opts = model._meta
        if opts.proxy or opts.swapped:
            continue
        if opts.db_table in specs:
            specs[opts.db_table].model_labels.append(opts.label)
            continue
        pk = opts.pk
        if pk is None or not pk.column:
            raise MoveRefused(f"{opts.label} has no single-column primary key; this move can't order its rows.")
        fields = list(opts.local_concrete_fields)  # exactly the columns of this model's own table
        target = getattr(pk, "target_field", None) if pk.is_relation else None
        pk_type = (target or pk).get_internal_type()
        specs[opts.db_table] = TableSpec(
            table=opts.db_table,
            model_labels=[opts.label],
            fields=fields,
            pk_columns=[pk.column],
            text_pk=pk_type in ("CharField", "TextField", "SlugField", "EmailField"),
            auto_pk_column=pk.column if pk.get_internal_type() in _AUTO_FIELDS else None,
            parents={f.related_model._meta.db_table for f in fields if f.is_relation and f.related_model is not None},
        )
    for spec in specs.values():
        spec.self_referencing = spec.table in spec.parents
        spec.parents &= set(specs) - {spec.table}
    return specs


def parents_first(specs: list[TableSpec]) -> list[TableSpec]:
    """The tables ordered so that every table comes after the tables its foreign keys point at."""
    remaining = {s.table: s for s in specs}
    ordered: list[TableSpec] = []
    while remaining:
        ready = sorted(t for t, s in remaining.items() if not (s.parents & set(remaining)))
        if not ready:  # a cycle: its foreign keys are checked at the end of each table's transaction
            ready = sorted(remaining)[:1]
        for table in ready:
            ordered.append(remaining.pop(table))
    return ordered


def plan_tables(
    source: BaseDatabaseWrapper, describe: Callable[[BaseDatabaseWrapper, str], list[str]]
) -> tuple[list[TableSpec], list[Decision]]:
    """The tables to copy (parents first) and a decision for every table of the source."""
    specs = model_tables()
    with source.cursor() as cursor:
        present = {info.name: info.type for info in source.introspection.get_table_list(cursor)}
    decisions: list[Decision] = []
    copy: list[TableSpec] = []
    notes: dict[str, str] = {}
    for table, spec in specs.items():
        managed = all(apps.get_model(label)._meta.managed for label in spec.model_labels)
        if table not in present:
            if managed:
                raise MoveRefused(
                    f"The source has no table {table} ({', '.join(spec.model_labels)}) though its migrations are applied."
                )
            decisions.append(Decision(table, "skip", "unmanaged model without a table in the source"))
            continue
        columns = describe(source, table)
        missing = [c for c in spec.columns if c not in columns]
        if missing:
            raise MoveRefused(f"The source's {table} lacks column(s) {', '.join(missing)} that the models have.")
        extra = [c for c in columns if c not in spec.columns]
        note = f"extra column(s) not copied: {', '.join(extra)}" if extra else ""
        notes[table] = note
        copy.append(spec)
    for table, kind in sorted(present.items()):
        if table in specs:
            continue
        if table == MIGRATIONS_TABLE:
            decisions.append(Decision(table, "migrate", "written by migrate on the target; the applied set is compared"))
        elif kind == "v":
            decisions.append(Decision(table, "skip", "a view (schema, not data)"))
        else:
            decisions.append(Decision(table, "skip", "no installed app's model owns it: not copied"))
    ordered = parents_first(copy)
    return ordered, [Decision(s.table, "copy", notes[s.table]) for s in ordered] + decisions


def column_names(connection: BaseDatabaseWrapper, table: str) -> list[str]:
    """The columns a table really has on ``connection``."""
    with connection.cursor() as cursor:
        return [c.name for c in connection.introspection.get_table_description(cursor, table)]


def order_clause(connection: BaseDatabaseWrapper, spec: TableSpec) -> str:
    """ORDER BY the primary key, text compared bytewise on both engines (collations differ)."""
    quote = connection.ops.quote_name
    collate = ' COLLATE "C"' if spec.text_pk and connection.vendor == "postgresql" else ""
    return ", ".join(f"{quote(c)}{collate}" for c in spec.pk_columns)


def select_sql(connection: BaseDatabaseWrapper, spec: TableSpec) -> str:
    """The statement that reads a table's rows in primary-key order."""
    quote = connection.ops.quote_name
    columns = ", ".join(quote(c) for c in spec.columns)
    return f"SELECT {columns} FROM {quote(spec.table)} ORDER BY {order_clause(connection, spec)}"


def row_mapper(pairs: list[tuple[int, Convert]], width: int) -> Callable[[Any], tuple] | None:
    """A function applying ``pairs`` to a row of ``width`` columns (None stays None); None when there is nothing to do.

    It is compiled to one tuple expression per table: a loop over the columns in Python
    cost more than the conversions themselves at a million rows.
    """
    if not pairs:
        return None
    functions = {f"f{i}": fn for i, fn in pairs}
    cells = [f"(None if r[{i}] is None else f{i}(r[{i}]))" if f"f{i}" in functions else f"r[{i}]" for i in range(width)]
    # Built from column positions and fixed names only, never from data.
    return eval(f"lambda r: ({', '.join(cells)},)", functions)
