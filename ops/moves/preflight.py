"""The refusals of a move, all checked before anything is written anywhere.

A source with unapplied (or unknown) migrations, the same database on both ends, a target
that can't be reached, and a target that already holds data (unless replacing it was
asked for and confirmed).
"""

from __future__ import annotations

import os
from collections.abc import Callable

from django.db import DatabaseError
from django.db.backends.base.base import BaseDatabaseWrapper
from django.db.migrations.executor import MigrationExecutor

from ops.moves.databases import Endpoint, server_identity
from ops.moves.errors import MoveRefused
from ops.moves.tables import MIGRATE_WRITES

Confirm = Callable[[str], str]  # shows a prompt, returns what the operator typed


def source_migrations_check(source: BaseDatabaseWrapper) -> None:
    """Refuse a source whose migrations differ from the code's (the target gets the code's schema)."""
    executor = MigrationExecutor(source)
    pending = executor.migration_plan(executor.loader.graph.leaf_nodes())
    if pending:
        names = ", ".join(f"{m.app_label}.{m.name}" for m, _ in pending[:5]) + (" …" if len(pending) > 5 else "")
        raise MoveRefused(
            f"The source database has {len(pending)} unapplied migration(s) ({names}). "
            "Run `manage.py migrate` on it first, then move it."
        )
    unknown = sorted(
        f"{app}.{name}" for app, name in executor.loader.applied_migrations if (app, name) not in executor.loader.graph.nodes
    )
    if unknown:
        raise MoveRefused(
            f"The source has migrations applied that this code doesn't have ({', '.join(unknown[:5])}): "
            "move it with the version of Guildhall that wrote it."
        )


def target_reach(target: Endpoint, connection: BaseDatabaseWrapper) -> bool:
    """Check the target can be opened without creating anything; False when it doesn't exist yet (SQLite)."""
    if target.is_sqlite:
        folder = target.path.parent
        if not folder.is_dir() or not os.access(folder, os.W_OK):
            raise MoveRefused(f"Can't reach the target {target.display}: the folder {folder} doesn't exist or isn't writable.")
        if not target.path.exists():
            return False  # created only once every check has passed
    try:
        connection.ensure_connection()
        with connection.cursor() as cursor:  # on SQLite this reads the header: "file is not a database"
            cursor.execute("SELECT count(*) FROM sqlite_master" if target.is_sqlite else "SELECT 1")
    except DatabaseError as exc:
        reason = str(exc).strip().splitlines()[0] if str(exc).strip() else type(exc).__name__
        hint = " (create it first, for instance with createdb)" if not target.is_sqlite else ""
        raise MoveRefused(f"Can't reach the target {target.display}{hint}: {reason}") from None
    return True


def same_server_check(source: BaseDatabaseWrapper, target: BaseDatabaseWrapper, display: str) -> None:
    """Refuse two URLs that reach one PostgreSQL database under different host names."""
    if source.vendor == target.vendor == "postgresql":
        mine, theirs = server_identity(source), server_identity(target)
        if mine is not None and mine == theirs:
            raise MoveRefused(f"The target {display} is the source database itself (same server and database).")


def tables_holding_data(connection: BaseDatabaseWrapper) -> list[str]:
    """The target's tables with at least one row, but for those ``migrate`` fills by itself."""
    quote = connection.ops.quote_name
    with connection.cursor() as cursor:
        tables = [t.name for t in connection.introspection.get_table_list(cursor) if t.type == "t"]
        full = []
        for table in sorted(tables):
            if table in MIGRATE_WRITES:
                continue
            cursor.execute(f"SELECT 1 FROM {quote(table)} LIMIT 1")
            if cursor.fetchone() is not None:
                full.append(table)
    return full


def replace_check(target: Endpoint, full: list[str], *, replace: bool, yes: bool, confirm: Confirm | None) -> None:
    """Refuse a target holding data unless --replace was given and confirmed (typed, or --yes)."""
    if not full:
        return
    listed = ", ".join(full[:5]) + (f" and {len(full) - 5} more" if len(full) > 5 else "")
    if not replace:
        raise MoveRefused(
            f"The target {target.display} already holds data ({listed}). Nothing was changed. "
            "Pass --replace to empty Guildhall's tables there and copy over them."
        )
    if yes:
        return
    word = target.confirmation_word
    typed = confirm(f"This empties {listed} in {target.display}. Type {word!r} to go on: ") if confirm else ""
    if typed.strip() != word:
        raise MoveRefused("Replacing the target was not confirmed; nothing was changed. (Type the name, or pass --yes.)")
