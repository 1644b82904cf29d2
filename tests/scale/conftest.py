"""Scale-out test set-up: a PostgreSQL primary and its streaming replica, made once per run.

``deploy/replica.sh pair`` makes them under a temp directory (in ``GUILDHALL_REPLICA_TMP``,
default /tmp), on two free ports of ``GUILDHALL_REPLICA_PORTS`` (default 5460-5469), with
pg_stat_statements loaded so that a test can see which server ran which statement; the shared
server on 5432 is never touched. The product runs against them in subprocesses (gunicorn,
manage.py), as it does in production.
"""

from __future__ import annotations

import os
import shutil
import signal
import socket
import subprocess
import sys
import tempfile
import time
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import psycopg
import pytest
import requests

ROOT = Path(__file__).resolve().parents[2]
SCRIPT = ROOT / "deploy" / "replica.sh"
DATABASE = "guildhall"


def _port_free(port: int) -> bool:
    with socket.socket() as probe:
        try:
            probe.bind(("127.0.0.1", port))
        except OSError:
            return False
    return True


def free_port() -> int:
    """A port nothing listens on now (for a web server of the test's own)."""
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return probe.getsockname()[1]


def _cluster_ports() -> list[int]:
    first, _, last = os.environ.get("GUILDHALL_REPLICA_PORTS", "5460-5469").partition("-")
    found = [port for port in range(int(first), int(last or first) + 1) if _port_free(port)]
    if len(found) < 2:
        pytest.fail(f"two free ports are needed in GUILDHALL_REPLICA_PORTS ({first}-{last}) for the replica pair")
    return found[:2]


@dataclass
class ReplicaPair:
    directory: str
    primary_port: int
    replica_port: int

    @property
    def primary_url(self) -> str:
        return f"postgres://postgres@127.0.0.1:{self.primary_port}/{DATABASE}"

    @property
    def replica_url(self) -> str:
        return f"postgres://postgres@127.0.0.1:{self.replica_port}/{DATABASE}"

    def port(self, server: str) -> int:
        return self.primary_port if server == "primary" else self.replica_port

    def sql(self, server: str, query: str, params: list | None = None) -> list[tuple]:
        with psycopg.connect(host="127.0.0.1", port=self.port(server), user="postgres", dbname=DATABASE, autocommit=True) as conn:
            cursor = conn.execute(query, params)
            return cursor.fetchall() if cursor.description else []

    def script(self, action: str) -> None:
        subprocess.run([str(SCRIPT), action, "--dir", self.directory], check=True, capture_output=True, text=True, timeout=90)

    def caught_up(self, timeout: float = 10.0) -> None:
        """Wait until the replica has replayed everything the primary has written."""
        target = self.sql("primary", "SELECT pg_current_wal_lsn()::text")[0][0]
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            if self.sql("replica", "SELECT pg_last_wal_replay_lsn() >= %s::pg_lsn", [target])[0][0]:
                return
            time.sleep(0.05)
        raise AssertionError(f"the replica did not reach {target} in {timeout} s")

    def statements_reset(self, servers: tuple[str, ...] = ("primary", "replica")) -> None:
        for server in servers:
            self.sql(server, "SELECT pg_stat_statements_reset()")

    def calls(self, server: str, pattern: str) -> int:
        """How many statements matching ``pattern`` (ILIKE) the server ran in our database since the reset."""
        found = self.sql(
            server,
            "SELECT coalesce(sum(s.calls), 0)::int FROM pg_stat_statements s JOIN pg_database d ON d.oid = s.dbid "
            "WHERE d.datname = %s AND s.query ILIKE %s",
            [DATABASE, pattern],
        )
        return found[0][0]


@pytest.fixture(scope="session")
def replica_pair() -> Iterator[ReplicaPair]:
    """A primary and a replica streaming from it, stopped and removed at the end of the run."""
    if shutil.which("runuser") is None and os.geteuid() == 0:
        pytest.fail("deploy/replica.sh needs runuser to run PostgreSQL as postgres when run as root")
    # As root the clusters run as postgres, which must be able to enter every parent directory.
    parent = os.environ.get("GUILDHALL_REPLICA_TMP", "/tmp")
    directory = tempfile.mkdtemp(prefix="guildhall-replica-", dir=parent)
    os.chmod(directory, 0o755)
    primary_port, replica_port = _cluster_ports()
    made = subprocess.run(
        [str(SCRIPT), "pair", "--dir", directory, "--primary-port", str(primary_port), "--replica-port", str(replica_port)]
        + ["--database", DATABASE, "--preload", "pg_stat_statements", "--set", "fsync=off"],
        capture_output=True,
        text=True,
        timeout=120,
    )
    pair = ReplicaPair(directory, primary_port, replica_port)
    try:
        assert made.returncode == 0, f"deploy/replica.sh pair failed:\n{made.stdout}\n{made.stderr}"
        pair.sql("primary", "CREATE EXTENSION IF NOT EXISTS pg_stat_statements")
        yield pair
    finally:
        subprocess.run([str(SCRIPT), "stop", "--dir", directory], capture_output=True, timeout=90)
        shutil.rmtree(directory, ignore_errors=True)


def product_env(pair: ReplicaPair, data_dir: str, **extra: str) -> dict[str, str]:
    """The environment of a Guildhall process on the pair (file cache, no Discord)."""
    env = {k: v for k, v in os.environ.items() if k not in ("DATABASE_URL", "DATABASE_REPLICA_URL", "REDIS_URL", "DISCORD_TOKEN")}
    env.update(
        DATABASE_URL=pair.primary_url,
        DATABASE_REPLICA_URL=pair.replica_url,
        GUILDHALL_DATA_DIR=data_dir,
        SECRET_KEY="replica-tests-" + "x" * 40,
        # As in production (DEBUG off: errors reach the middleware), over plain http on loopback.
        DEBUG="0",
        SECURE_SSL_REDIRECT="0",
        SESSION_COOKIE_SECURE="0",
        CSRF_COOKIE_SECURE="0",
        PYTHONUNBUFFERED="1",
    )
    env.update(extra)
    return env


def manage(env: dict[str, str], *args: str, code: str | None = None) -> str:
    """Run ``manage.py`` (or ``manage.py shell -c CODE``) and return its output; fail with it on error."""
    command = [sys.executable, str(ROOT / "manage.py"), *args] + (["shell", "-c", code] if code else [])
    done = subprocess.run(command, cwd=ROOT, env=env, capture_output=True, text=True, timeout=120)
    assert done.returncode == 0, f"{' '.join(args) or 'shell'} failed:\n{done.stdout}\n{done.stderr}"
    return done.stdout


class Web:
    """gunicorn serving Guildhall, by default with one worker (one process, so one replica verdict)."""

    def __init__(self, env: dict[str, str], log: Path, workers: int = 1) -> None:
        self.port = free_port()
        self.url = f"http://127.0.0.1:{self.port}"
        self.log = log
        gunicorn = str(Path(sys.executable).with_name("gunicorn"))
        self._log_file = log.open("w")
        self.process = subprocess.Popen(
            [gunicorn, "config.wsgi", "--bind", f"127.0.0.1:{self.port}", "--workers", str(workers), "--timeout", "60"],
            cwd=ROOT,
            env=env,
            stdout=self._log_file,
            stderr=subprocess.STDOUT,
        )
        try:
            self._wait_until_it_answers()
        except BaseException:
            self.stop()  # never leave a server behind a failed start
            raise

    def _wait_until_it_answers(self) -> None:
        deadline = time.monotonic() + 30
        while time.monotonic() < deadline:
            if self.process.poll() is not None:
                raise AssertionError(f"gunicorn exited:\n{self.log.read_text()}")
            try:
                requests.get(self.url + "/health", timeout=15)
                return
            except (requests.ConnectionError, requests.Timeout):
                time.sleep(0.1)
        raise AssertionError(f"gunicorn did not answer in 30 s:\n{self.log.read_text()}")

    def stop(self) -> None:
        if self.process.poll() is None:
            self.process.send_signal(signal.SIGTERM)
            try:
                self.process.wait(timeout=20)
            except subprocess.TimeoutExpired:
                self.process.kill()
                self.process.wait()
        if not self._log_file.closed:
            self._log_file.close()
