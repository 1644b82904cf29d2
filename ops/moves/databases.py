"""The two ends of a move as Django database aliases: the source opened read-only, the target by URL.

Both are configured at runtime (``connections[alias]``) so that ``migrate``, the model
metadata and Django's introspection drive them like any other database.
"""

from __future__ import annotations

import os
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any
from urllib.parse import unquote, urlsplit

import dj_database_url
from django.db import DEFAULT_DB_ALIAS, DatabaseError, connections
from django.db.backends.base.base import BaseDatabaseWrapper
from django.db.utils import load_backend

from ops.moves.errors import MoveRefused

SOURCE_ALIAS = "guildhall_move_source"
TARGET_ALIAS = "guildhall_move_target"

POSTGRESQL = "django.db.backends.postgresql"
SQLITE = "django.db.backends.sqlite3"
_LOCAL_HOSTS = {"", "localhost", "127.0.0.1", "::1", "[::1]"}
# A copy of a million rows is one long COPY: the web's statement timeout must not apply.
_PG_SESSION = "-c statement_timeout=0 -c idle_in_transaction_session_timeout=0 -c TimeZone=UTC"


@dataclass(frozen=True)
class Endpoint:
    """One database of a move: its Django settings and how to name it to the operator."""

    engine: str
    config: dict[str, Any] = field(hash=False, compare=False)
    display: str = ""

    @property
    def is_sqlite(self) -> bool:
        return self.engine == SQLITE

    @property
    def path(self) -> Path:
        """The SQLite file (resolved), for SQLite endpoints."""
        name = str(self.config["NAME"])
        if name.startswith("file:"):
            name = unquote(urlsplit(name).path)
        return Path(name).expanduser().resolve()

    @property
    def confirmation_word(self) -> str:
        """What the operator types to confirm --replace: the database's name or file name."""
        return self.path.name if self.is_sqlite else str(self.config["NAME"])


def endpoint_from_url(url: str) -> Endpoint:
    """The target named by a ``postgres://`` or ``sqlite:///`` URL."""
    try:
        config = dj_database_url.parse(url)
    except Exception as exc:  # dj-database-url raises several types for bad URLs
        raise MoveRefused(f"{url!r} is not a database URL: {exc}") from None
    engine = config.get("ENGINE", "")
    if engine not in (POSTGRESQL, SQLITE):
        raise MoveRefused(f"The target must be a postgres:// or sqlite:/// URL, not {url!r}.")
    if not config.get("NAME") or (engine == SQLITE and str(config["NAME"]).startswith(":memory:")):
        raise MoveRefused(f"The target URL must name a database (postgres://user@host:port/NAME or sqlite:///FILE): {url!r}")
    endpoint = Endpoint(engine=engine, config=dict(config))
    return Endpoint(engine=engine, config=dict(config), display=_display(endpoint))


def endpoint_from_alias(alias: str = DEFAULT_DB_ALIAS) -> Endpoint:
    """The database the project runs on (DATABASE_URL, or the SQLite default)."""
    config = dict(connections[alias].settings_dict)
    engine = config["ENGINE"]
    if engine not in (POSTGRESQL, SQLITE):
        raise MoveRefused(f"Only SQLite and PostgreSQL databases can be moved, not {engine}.")
    endpoint = Endpoint(engine=engine, config=config)
    return Endpoint(engine=engine, config=config, display=_display(endpoint))


def _display(endpoint: Endpoint) -> str:
    if endpoint.is_sqlite:
        return f"sqlite:///{endpoint.path}"
    c = endpoint.config
    user = f"{c.get('USER')}@" if c.get("USER") else ""
    port = f":{c.get('PORT')}" if c.get("PORT") else ""
    return f"postgres://{user}{c.get('HOST') or ''}{port}/{c['NAME']}"  # never the password


def _base(endpoint: Endpoint) -> dict[str, Any]:
    keep = ("ENGINE", "NAME", "USER", "PASSWORD", "HOST", "PORT")
    return {key: endpoint.config.get(key, "") for key in keep} | {"CONN_MAX_AGE": 0, "ATOMIC_REQUESTS": False}


def source_settings(endpoint: Endpoint) -> dict[str, Any]:
    """Settings that open the source read-only: SQLite's ``mode=ro``, PostgreSQL's read-only default."""
    config = _base(endpoint)
    if endpoint.is_sqlite:
        config["NAME"] = endpoint.path.as_uri() + "?mode=ro"
        # Raw values, not Django's converters: the copy and the checksum read storage forms.
        config["OPTIONS"] = {"detect_types": 0, "timeout": 20}
    else:
        config["OPTIONS"] = {
            "options": f"-c default_transaction_read_only=on {_PG_SESSION}",
            "application_name": "guildhall-move",
        }
    return config


def target_settings(endpoint: Endpoint) -> dict[str, Any]:
    """Settings for writing the target (no pool: one connection for one long job)."""
    config = _base(endpoint)
    if endpoint.is_sqlite:
        config["NAME"] = str(endpoint.path)
        config["OPTIONS"] = {"detect_types": 0, "timeout": 20}
    else:
        config["OPTIONS"] = {"options": _PG_SESSION, "application_name": "guildhall-move"}
    return config


@contextmanager
def database_alias(alias: str, config: dict[str, Any]) -> Iterator[BaseDatabaseWrapper]:
    """Make ``alias`` a database of this thread (``connections[alias]``) for the duration of the block.

    The wrapper is put in ``connections`` directly rather than in the settings: it exists
    only for this job, and Django's test isolation treats it as the dynamic connection it is.
    """
    filled = connections.configure_settings({DEFAULT_DB_ALIAS: dict(config)})[DEFAULT_DB_ALIAS]
    wrapper = load_backend(filled["ENGINE"]).DatabaseWrapper(filled, alias)
    connections[alias] = wrapper
    try:
        yield wrapper
    finally:
        wrapper.close()
        del connections[alias]


def same_database(source: Endpoint, target: Endpoint) -> bool:
    """Whether the two URLs name one database (before connecting: paths, hosts, ports, names)."""
    if source.engine != target.engine:
        return False
    if source.is_sqlite:
        if source.path == target.path:
            return True
        return target.path.exists() and source.path.exists() and os.path.samefile(source.path, target.path)
    a, b = source.config, target.config

    def host(config: dict[str, Any]) -> str:
        value = str(config.get("HOST") or "")
        return "local" if value in _LOCAL_HOSTS or value.startswith("/") else value.lower()

    return (host(a), str(a.get("PORT") or 5432), a["NAME"]) == (host(b), str(b.get("PORT") or 5432), b["NAME"])


def server_identity(connection: BaseDatabaseWrapper) -> tuple[str, str] | None:
    """A PostgreSQL database's (cluster system identifier, name), or None when it can't be read."""
    try:
        with connection.cursor() as cursor:
            cursor.execute("SELECT system_identifier::text, current_database() FROM pg_control_system()")
            row = cursor.fetchone()
    except DatabaseError:  # pg_control_system() is for superusers and pg_monitor
        return None
    return (row[0], row[1]) if row else None
