"""``database_move``: copy every table of this database into another one, then prove the copy equal.

Order of work: every refusal first (nothing written anywhere), then ``migrate`` on the
target, its tables emptied of what ``migrate`` wrote, each table copied parents first
from one read-only snapshot of the source, sequences set, and each table read back and
checksummed the same way as the source was while it was read.
"""

from __future__ import annotations

import hashlib
import io
import time
from contextlib import closing
from dataclasses import dataclass, field

from django.core.management import call_command
from django.db import DEFAULT_DB_ALIAS, DatabaseError, transaction
from django.db.backends.base.base import BaseDatabaseWrapper

from ops.moves import preflight
from ops.moves.bulk_load import bulk_load_finish, bulk_load_prepare
from ops.moves.copying import TableSum, checksum_table, copy_table, count_rows
from ops.moves.databases import (
    SOURCE_ALIAS,
    TARGET_ALIAS,
    database_alias,
    endpoint_from_alias,
    endpoint_from_url,
    same_database,
    source_settings,
    target_settings,
)
from ops.moves.errors import MoveRefused
from ops.moves.progress import ProgressBar, Write
from ops.moves.sequences import last_used_id, sequence_set
from ops.moves.tables import MIGRATIONS_TABLE, Decision, TableSpec, column_names, plan_tables

DEFAULT_BATCH = 5_000


@dataclass
class TableResult:
    """One line of the verification: the table on both sides and the time its copy and check took."""

    table: str
    source: TableSum
    target: TableSum
    seconds: float

    @property
    def ok(self) -> bool:
        return self.source.rows == self.target.rows and self.source.checksum == self.target.checksum


@dataclass
class _Copied:
    """A table as read from the source while it was copied."""

    source: TableSum
    seconds: float
    last_used_id: int


@dataclass
class MoveReport:
    """What a move did: where from and to, the plan, every table's verification."""

    source: str
    target: str
    decisions: list[Decision] = field(default_factory=list)
    tables: list[TableResult] = field(default_factory=list)
    sequences: int = 0
    seconds: float = 0.0

    @property
    def mismatches(self) -> list[TableResult]:
        return [t for t in self.tables if not t.ok]

    @property
    def ok(self) -> bool:
        return not self.mismatches


def database_move(
    *,
    target_url: str,
    replace: bool = False,
    yes: bool = False,
    confirm: preflight.Confirm | None = None,
    write: Write = lambda text: None,
    batch_size: int = DEFAULT_BATCH,
    source_alias: str = DEFAULT_DB_ALIAS,
) -> MoveReport:
    """Copy the database of ``source_alias`` into the one at ``target_url``; raise ``MoveRefused`` untouched."""
    started = time.monotonic()
    source_end, target_end = endpoint_from_alias(source_alias), endpoint_from_url(target_url)
    if same_database(source_end, target_end):
        raise MoveRefused(f"The target {target_end.display} is the source database itself.")
    report = MoveReport(source=source_end.display, target=target_end.display)
    with (
        database_alias(SOURCE_ALIAS, source_settings(source_end)) as source,
        database_alias(TARGET_ALIAS, target_settings(target_end)) as target,
    ):
        try:
            source.ensure_connection()
        except DatabaseError as exc:
            raise MoveRefused(f"Can't open the source {source_end.display}: {exc}") from None
        preflight.source_migrations_check(source)
        specs, report.decisions = plan_tables(source, column_names)
        if preflight.target_reach(target_end, target):
            preflight.same_server_check(source, target, target_end.display)
            full = preflight.tables_holding_data(target)
            preflight.replace_check(target_end, full, replace=replace, yes=yes, confirm=confirm)
        write(f"Moving {source_end.display} → {target_end.display}\n")
        for decision in report.decisions:
            write(f"  {decision.action:<8} {decision.table}{'  (' + decision.note + ')' if decision.note else ''}\n")
        # From here on the target changes (and only the target).
        specs = _migrate(target, specs, report, write)
        sums = _copy_all(source, target, specs, batch_size, write)
        report.sequences = _set_sequences(target, specs, sums)
        write(f"Sequences set on {report.sequences} tables; verifying…\n")
        report.tables = _verify(source, target, specs, sums, batch_size, write)
    report.seconds = time.monotonic() - started
    return report


def _migrate(target: BaseDatabaseWrapper, specs: list[TableSpec], report: MoveReport, write: Write) -> list[TableSpec]:
    if target.vendor == "sqlite":
        with target.cursor() as cursor:  # the product's own journal mode; NORMAL is durable at each checkpoint
            cursor.execute("PRAGMA journal_mode=WAL")
            cursor.execute("PRAGMA synchronous=NORMAL")
    write("Applying migrations to the target…\n")
    call_command("migrate", database=TARGET_ALIAS, interactive=False, verbosity=0, stdout=io.StringIO())
    with target.cursor() as cursor:
        present = {t.name for t in target.introspection.get_table_list(cursor)}
    kept = [s for s in specs if s.table in present]
    for spec in specs:
        if spec.table not in present:  # only unmanaged models can lack a table after migrate
            report.decisions.append(Decision(spec.table, "skip", "no table on the target (unmanaged model)"))
            write(f"  skip     {spec.table}  (no table on the target: an unmanaged model)\n")
    quote = target.ops.quote_name
    with transaction.atomic(using=TARGET_ALIAS), closing(target.connection.cursor()) as cursor:
        # Content types and permissions made by migrate go: the source's come with their ids.
        if target.vendor == "postgresql" and kept:
            cursor.execute(f"TRUNCATE {', '.join(quote(s.table) for s in kept)} RESTART IDENTITY")
        else:
            for spec in reversed(kept):
                cursor.execute(f"DELETE FROM {quote(spec.table)}")
    return kept


def _copy_all(
    source: BaseDatabaseWrapper, target: BaseDatabaseWrapper, specs: list[TableSpec], batch: int, write: Write
) -> dict[str, _Copied]:
    sums: dict[str, _Copied] = {}
    # One snapshot of the source for every table, so that the copy is consistent across tables.
    with transaction.atomic(using=SOURCE_ALIAS):
        if source.vendor == "postgresql":
            with source.cursor() as cursor:
                cursor.execute("SET TRANSACTION ISOLATION LEVEL REPEATABLE READ, READ ONLY")
        for spec in specs:
            bar = ProgressBar(write, f"copy {spec.table}", count_rows(source, spec.table))
            with transaction.atomic(using=TARGET_ALIAS):
                load = bulk_load_prepare(target, spec.table)
                result = copy_table(source, target, spec, batch=batch, freeze=load.freeze, advance=bar.advance)
                bulk_load_finish(target, load)
            last_id = last_used_id(source, spec) if spec.auto_pk_column else 0
            sums[spec.table] = _Copied(result, bar.finish(), last_id)
    return sums


def _set_sequences(target: BaseDatabaseWrapper, specs: list[TableSpec], sums: dict[str, _Copied]) -> int:
    done = 0
    with transaction.atomic(using=TARGET_ALIAS):
        for spec in specs:
            if spec.auto_pk_column is None:
                continue
            copied = sums[spec.table]
            sequence_set(target, spec, last_id=max(copied.last_used_id, int(copied.source.max_pk or 0)))
            done += 1
    return done


def _verify(
    source: BaseDatabaseWrapper,
    target: BaseDatabaseWrapper,
    specs: list[TableSpec],
    sums: dict[str, _Copied],
    batch: int,
    write: Write,
) -> list[TableResult]:
    results = []
    for spec in specs:
        copied = sums[spec.table]
        bar = ProgressBar(write, f"verify {spec.table}", copied.source.rows)
        with transaction.atomic(using=TARGET_ALIAS):
            target_sum = checksum_table(target, spec, batch=batch, advance=bar.advance)
        results.append(TableResult(spec.table, copied.source, target_sum, copied.seconds + bar.finish()))
    started = time.monotonic()
    applied = [_applied_migrations(c) for c in (source, target)]
    results.append(TableResult(f"{MIGRATIONS_TABLE} (applied set)", applied[0], applied[1], time.monotonic() - started))
    return results


def _applied_migrations(connection: BaseDatabaseWrapper) -> TableSum:
    # Ids and times differ by nature (migrate wrote the target's rows): compare which migrations.
    with connection.cursor() as cursor:
        cursor.execute(f"SELECT app, name FROM {connection.ops.quote_name(MIGRATIONS_TABLE)}")
        rows = sorted(tuple(r) for r in cursor.fetchall())
    digest = hashlib.sha256("\n".join(map(repr, rows)).encode()).hexdigest()
    return TableSum(rows=len(rows), checksum=digest, max_pk=None)
