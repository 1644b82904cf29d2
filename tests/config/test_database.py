"""The database plumbing: SQLite's settings take effect, slow queries are logged, transient errors retried."""

from __future__ import annotations

import logging
import threading

import pytest
from django.conf import settings
from django.db import IntegrityError, OperationalError, connection
from django.db.utils import ConnectionHandler

from commands.models import CustomCommand
from config.database import is_transient, retry_transient
from config.settings import _sqlite


@pytest.fixture
def unblocked(django_db_blocker):
    """These tests open their own SQLite files, outside the test database."""
    with django_db_blocker.unblock():
        yield


def test_it_opens_sqlite_in_wal_with_a_busy_timeout_and_immediate_transactions(tmp_path, unblocked):
    handler = ConnectionHandler({"default": _sqlite(tmp_path / "probe.sqlite3")})
    probe = handler["default"]
    try:
        with probe.cursor() as cursor:
            cursor.execute("PRAGMA journal_mode")
            assert cursor.fetchone()[0] == "wal"
            cursor.execute("PRAGMA busy_timeout")
            assert cursor.fetchone()[0] == settings.SQLITE_BUSY_TIMEOUT_S * 1000
        assert probe.transaction_mode == "IMMEDIATE"
    finally:
        handler.close_all()


def test_it_lets_two_sqlite_writers_queue_instead_of_failing(tmp_path, unblocked):
    """A second writer waits for the first (busy timeout) instead of 'database is locked'."""
    path = tmp_path / "writers.sqlite3"
    setup = ConnectionHandler({"default": _sqlite(path)})
    with setup["default"].cursor() as cursor:
        cursor.execute("CREATE TABLE t (n INTEGER)")
    setup.close_all()
    errors: list[BaseException] = []
    first_holds = threading.Event()

    def writer(hold: bool) -> None:
        handler = ConnectionHandler({"default": _sqlite(path)})
        conn = handler["default"]
        try:
            conn.ensure_connection()
            raw = conn.connection  # opened with the product's timeout and PRAGMAs
            raw.isolation_level = None
            raw.execute("BEGIN IMMEDIATE")
            raw.execute("INSERT INTO t VALUES (1)")
            if hold:
                first_holds.set()
                threading.Event().wait(0.5)
            raw.execute("COMMIT")
        except BaseException as exc:
            errors.append(exc)
        finally:
            handler.close_all()

    first = threading.Thread(target=writer, args=(True,))
    first.start()
    first_holds.wait(5)
    second = threading.Thread(target=writer, args=(False,))
    second.start()
    first.join(10)
    second.join(10)
    assert errors == []
    check = ConnectionHandler({"default": _sqlite(path)})
    with check["default"].cursor() as cursor:
        cursor.execute("SELECT COUNT(*) FROM t")
        assert cursor.fetchone()[0] == 2
    check.close_all()


@pytest.mark.django_db
def test_it_logs_slow_queries_without_their_parameters(settings, caplog):
    settings.SLOW_QUERY_MS = 0
    connection.ensure_connection()
    with caplog.at_level(logging.WARNING, logger="config.database"):
        CustomCommand.objects.filter(name="topsecretvalue").exists()
    logged = [r.getMessage() for r in caplog.records if r.getMessage().startswith("slow query")]
    assert logged, "the query was not logged"
    assert "commands_customcommand" in logged[-1]
    assert "topsecretvalue" not in logged[-1]


@pytest.mark.django_db
def test_it_does_not_log_fast_queries(settings, caplog):
    settings.SLOW_QUERY_MS = 60_000
    with caplog.at_level(logging.WARNING, logger="config.database"):
        CustomCommand.objects.filter(name="x").exists()
    assert not [r for r in caplog.records if r.getMessage().startswith("slow query")]


def test_it_tells_transient_errors_from_others():
    class Cause(Exception):
        def __init__(self, sqlstate):
            self.sqlstate = sqlstate

    def wrapped(sqlstate):
        exc = OperationalError("boom")
        exc.__cause__ = Cause(sqlstate)
        return exc

    assert is_transient(wrapped("40001"))  # serialization failure
    assert is_transient(wrapped("40P01"))  # deadlock
    assert is_transient(wrapped("08006"))  # connection failure
    assert not is_transient(wrapped("57014"))  # statement timeout: running it again won't help
    assert is_transient(OperationalError("database is locked"))
    assert not is_transient(IntegrityError("UNIQUE constraint failed"))


@pytest.mark.postgres
@pytest.mark.django_db(transaction=True)
def test_it_retries_after_the_server_drops_the_connection():
    import psycopg

    with connection.cursor() as cursor:
        cursor.execute("SELECT pg_backend_pid()")
        pid = cursor.fetchone()[0]
    params = connection.get_connection_params()
    params.pop("cursor_factory", None)
    params.pop("context", None)
    params.pop("prepare_threshold", None)
    with psycopg.connect(
        **{k: v for k, v in params.items() if k in ("dbname", "user", "host", "port", "password")}, autocommit=True
    ) as admin:
        admin.execute("SELECT pg_terminate_backend(%s)", [pid])
    attempts = []

    @retry_transient(base_delay=0.01)
    def read_one() -> int:
        attempts.append(1)
        with connection.cursor() as cursor:
            cursor.execute("SELECT 1")
            return cursor.fetchone()[0]

    assert read_one() == 1
    assert len(attempts) == 2


@pytest.mark.django_db(transaction=True)
def test_it_gives_up_after_the_last_attempt():
    attempts = []

    @retry_transient(attempts=3, base_delay=0.001)
    def always_locked():
        attempts.append(1)
        raise OperationalError("database is locked")

    with pytest.raises(OperationalError):
        always_locked()
    assert len(attempts) == 3


@pytest.mark.postgres
@pytest.mark.django_db(transaction=True)
def test_it_does_not_wait_for_the_pool_again_when_the_database_is_away(unblocked):
    """A pool that gave up after its timeout is not asked again within the same call: while the
    database is down, four attempts would hold a request for four pool timeouts."""
    import socket

    from psycopg_pool import PoolTimeout

    with socket.socket() as probe:  # a port nothing listens on: a database that is away
        probe.bind(("127.0.0.1", 0))
        port = probe.getsockname()[1]
    away = {**settings.DATABASES["default"], "PORT": port, "NAME": "away"}
    away["OPTIONS"] = {**away["OPTIONS"], "pool": {"min_size": 0, "max_size": 1, "timeout": 1}}
    # Pools are kept per alias: "away", not the default's.
    handler = ConnectionHandler({"default": settings.DATABASES["default"], "away": away})
    attempts = []

    @retry_transient(base_delay=0.01)
    def read_one() -> int:
        attempts.append(1)
        with handler["away"].cursor() as cursor:
            cursor.execute("SELECT 1")
            return cursor.fetchone()[0]

    try:
        with pytest.raises(OperationalError) as raised:
            read_one()
        assert isinstance(raised.value.__cause__, PoolTimeout)
        assert len(attempts) == 1
    finally:
        handler.close_all()
        handler["away"].close_pool()
