"""PostgreSQL: ``pg_dump -Fc`` through django-dbbackup's PgDumpBinaryConnector; restores in one transaction.

A restore turns the custom-format dump into SQL with ``pg_restore --file`` and runs it with
``psql --single-transaction`` after dropping the tables of the ``public`` schema, so a
failure anywhere rolls everything back, and tables that a later migration added (and
their foreign keys) go too — ``pg_restore --clean`` would leave those behind, or fail on
them, which is exactly the case of undoing a bad migration.
"""

from __future__ import annotations

import contextlib
import os
import secrets
import shlex
import subprocess
import tempfile
from collections.abc import Iterator
from pathlib import Path

import psycopg
from dbbackup import settings as dbbackup_settings
from dbbackup.db.base import get_connector
from dbbackup.db.exceptions import CommandConnectorError
from dbbackup.db.postgresql import PgDumpBinaryConnector, parse_postgres_settings
from django.conf import settings
from django.db import connections, transaction
from psycopg import sql

from ops.backups.engines.common import DumpUnreadable, ToolFailed, ToolMissing, quote_table

VENDOR = "postgresql"
EXTENSION = PgDumpBinaryConnector.extension
# pg_dump -Fc has compressed the data already: the outer gzip is for the integrity check
# (CRC over the whole file), not for size, so it runs at its fastest level.
GZIP_LEVEL = 1
CONNECTOR = "dbbackup.db.postgresql.PgDumpBinaryConnector"
MAGIC = b"PGDMP"
SCHEMA = "public"
LOCK_TIMEOUT = "60s"  # a session that holds a table open for longer makes the restore give up cleanly

_TABLES = f"""
    SELECT c.relname FROM pg_class c JOIN pg_namespace n ON n.oid = c.relnamespace
    WHERE n.nspname = '{SCHEMA}' AND c.relkind IN ('r', 'p') AND NOT c.relispartition ORDER BY 1
"""
# Everything of ours in the schema; objects that belong to an extension (pg_stat_statements'
# view, say) stay, and the dump's CREATE EXTENSION IF NOT EXISTS leaves them be.
_CLEAR_SCHEMA = f"""
SET lock_timeout = '{LOCK_TIMEOUT}';
DO $guildhall$
DECLARE r record;
BEGIN
  FOR r IN
    SELECT c.relname, c.relkind FROM pg_class c JOIN pg_namespace n ON n.oid = c.relnamespace
    WHERE n.nspname = '{SCHEMA}' AND c.relkind IN ('r', 'p', 'f', 'v', 'm', 'S')
      AND NOT EXISTS (SELECT 1 FROM pg_depend d WHERE d.objid = c.oid AND d.deptype = 'e')
    ORDER BY CASE WHEN c.relkind IN ('r', 'p', 'f') THEN 0 WHEN c.relkind IN ('v', 'm') THEN 1 ELSE 2 END
  LOOP
    EXECUTE format(
      CASE r.relkind WHEN 'v' THEN 'DROP VIEW IF EXISTS %I.%I CASCADE'
                     WHEN 'm' THEN 'DROP MATERIALIZED VIEW IF EXISTS %I.%I CASCADE'
                     WHEN 'S' THEN 'DROP SEQUENCE IF EXISTS %I.%I CASCADE'
                     WHEN 'f' THEN 'DROP FOREIGN TABLE IF EXISTS %I.%I CASCADE'
                     ELSE 'DROP TABLE IF EXISTS %I.%I CASCADE' END,
      '{SCHEMA}', r.relname);
  END LOOP;
END
$guildhall$;
"""


def _connector(alias: str, name: str | None = None) -> PgDumpBinaryConnector:
    connector = get_connector(alias, connector_path=CONNECTOR)
    if name is not None:
        connector.settings["NAME"] = name  # the same server and account, another database
    return connector


def _run(args: list[str], *, stdout=None, env: dict | None = None) -> bytes:
    """Run a client tool; its stdout (when not sent to a file), or ToolFailed/ToolMissing."""
    try:
        done = subprocess.run(args, stdout=stdout or subprocess.PIPE, stderr=subprocess.PIPE, env=env)
    except FileNotFoundError as exc:
        raise ToolMissing(f"{args[0]} is not installed on this machine (the PostgreSQL client tools are needed)") from exc
    if done.returncode:
        raise ToolFailed(f"{args[0]} failed: {done.stderr.decode(errors='replace').strip()[:2000]}")
    return done.stdout


def _table_counts(cursor) -> dict[str, int]:
    cursor.execute(_TABLES)
    names = [row[0] for row in cursor.fetchall()]
    counts = {}
    for name in names:
        cursor.execute(f"SELECT COUNT(*) FROM {SCHEMA}.{quote_table(name)}")
        counts[name] = cursor.fetchone()[0]
    return counts


def dump_create(alias: str, dest: Path) -> dict[str, int]:
    """``pg_dump -Fc`` the database to ``dest``; return its row count per table, from the dump's snapshot."""
    connector = _connector(alias)
    with transaction.atomic(using=alias), connections[alias].cursor() as cursor:
        # Counts and pg_dump share one snapshot, so the sidecar's counts are exactly the dump's.
        cursor.execute("SET TRANSACTION ISOLATION LEVEL REPEATABLE READ, READ ONLY")
        cursor.execute("SET LOCAL statement_timeout = 0")
        cursor.execute("SELECT pg_export_snapshot()")
        snapshot = cursor.fetchone()[0]
        counts = _table_counts(cursor)
        connector.dump_suffix = f"--snapshot={shlex.quote(snapshot)} --file={shlex.quote(str(dest))}"
        try:
            connector.create_dump()
        except CommandConnectorError as exc:
            raise ToolFailed(str(exc)[:2000]) from exc
    return counts


def dump_check(path: Path) -> None:
    """Raise DumpUnreadable unless pg_restore reads the whole archive."""
    try:
        _run(["pg_restore", f"--file={os.devnull}", str(path)])
    except ToolFailed as exc:
        raise DumpUnreadable(f"pg_restore cannot read it ({str(exc)[:300]})") from exc


def dump_migrations(path: Path) -> list[tuple[str, str]]:
    """The (app, migration) pairs recorded as applied in the dump, in the order they were applied."""
    try:
        out = _run(["pg_restore", "--data-only", "--table=django_migrations", "--file=-", str(path)])
    except ToolFailed as exc:
        raise DumpUnreadable(f"pg_restore cannot read it ({str(exc)[:300]})") from exc
    lines = out.decode().splitlines()
    header = next((i for i, line in enumerate(lines) if line.startswith("COPY ") and "django_migrations" in line), None)
    if header is None:
        raise DumpUnreadable("it has no migration table")
    columns = [c.strip() for c in lines[header].split("(", 1)[1].split(")", 1)[0].split(",")]
    rows = []
    for line in lines[header + 1 :]:
        if line == "\\.":
            break
        values = dict(zip(columns, line.split("\t")))
        rows.append((int(values["id"]), values["app"], values["name"]))
    return [(app, name) for _, app, name in sorted(rows)]


def dump_restore(path: Path, *, alias: str, name: str) -> None:
    """Replace the contents of database ``name`` by the dump's, in one transaction."""
    cmd_part, env = parse_postgres_settings(_connector(alias, name))
    with tempfile.NamedTemporaryFile(prefix="guildhall-restore-", suffix=".sql", dir=dbbackup_settings.TMP_DIR) as script:
        script.write(_CLEAR_SCHEMA.encode())
        script.flush()
        _run(["pg_restore", "--no-owner", "--file=-", str(path)], stdout=script)
        script.flush()
        _run(
            [
                "psql",
                "--no-psqlrc",
                "--quiet",
                "--single-transaction",
                "--set=ON_ERROR_STOP=1",
                *shlex.split(cmd_part),
                f"--file={script.name}",
            ],
            env={**os.environ, **env},
        )


def _connect(alias: str, name: str) -> psycopg.Connection:
    """A plain connection to database ``name`` on the alias's server: PostgreSQL itself.

    Behind a transaction pooler (DATABASE_POOLER=pgbouncer) the server is DATABASE_DIRECT_URL,
    as for pg_dump: PgBouncer knows only the configured database, never a drill's scratch one,
    and CREATE/DROP DATABASE can't run through it.
    """
    database = connections[alias].settings_dict
    direct = getattr(settings, "DBBACKUP_CONNECTORS", {}).get(alias, {})
    options = database.get("OPTIONS") or {}
    params = {
        "host": direct.get("HOST", database.get("HOST")),
        "port": direct.get("PORT", database.get("PORT")),
        "user": direct.get("USER", database.get("USER")),
        "password": direct.get("PASSWORD", database.get("PASSWORD")),
        **{key: options.get(key) for key in ("sslmode", "sslrootcert", "sslcert", "sslkey", "passfile", "service")},
    }
    return psycopg.connect(dbname=name, autocommit=True, **{k: v for k, v in params.items() if v})


@contextlib.contextmanager
def scratch_database(alias: str) -> Iterator[str]:
    """A throw-away database on the same server for a drill, dropped afterwards."""
    base = connections[alias].settings_dict["NAME"]
    name = f"{base[:40]}_drill_{secrets.token_hex(4)}"
    with _connect(alias, base) as conn:
        conn.execute(sql.SQL("CREATE DATABASE {} TEMPLATE template0").format(sql.Identifier(name)))
    try:
        yield name
    finally:
        with _connect(alias, base) as conn:
            conn.execute(sql.SQL("DROP DATABASE IF EXISTS {} WITH (FORCE)").format(sql.Identifier(name)))


def database_counts(alias: str, name: str) -> dict[str, int]:
    """Row count per table of database ``name`` on the same server."""
    with _connect(alias, name) as conn, conn.cursor() as cursor:
        return _table_counts(cursor)
