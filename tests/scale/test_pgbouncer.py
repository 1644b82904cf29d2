"""DATABASE_POOLER=pgbouncer: the product behind a real PgBouncer in transaction pooling mode.

Each test starts ``deploy/pgbouncer.sh`` in front of the test database's own server (which
it doesn't reconfigure) and runs the product in a subprocess pointed at it, as production
would: no pool of Django's own, no server-side cursors, no prepared statements, the
statement timeout in force through PgBouncer, backups going straight to PostgreSQL.
"""

from __future__ import annotations

import json
import os
import shutil
import socket
import subprocess
import sys
import tempfile
from collections.abc import Iterator
from pathlib import Path

import dj_database_url
import psycopg
import pytest
from django.conf import settings
from django.db import connection

ROOT = Path(__file__).resolve().parents[2]
SCRIPT = ROOT / "deploy" / "pgbouncer.sh"

pytestmark = [pytest.mark.postgres]


def _free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return probe.getsockname()[1]


def _server() -> tuple[str, int]:
    """PostgreSQL itself: the direct URL when this run is already behind a pooler."""
    direct = os.environ.get("DATABASE_DIRECT_URL")
    if direct and settings.DATABASE_POOLER:
        parsed = dj_database_url.parse(direct)
        return parsed["HOST"] or "127.0.0.1", int(parsed["PORT"] or 5432)
    db = connection.settings_dict
    return db["HOST"] or "127.0.0.1", int(db["PORT"] or 5432)


class Bouncer:
    def __init__(self, directory: str, port: int, host: str, server_port: int) -> None:
        self.directory, self.port, self.host, self.server_port = directory, port, host, server_port

    def script(self, *args: str) -> subprocess.CompletedProcess:
        return subprocess.run([str(SCRIPT), *args, "--dir", self.directory], capture_output=True, text=True, timeout=60)

    def admin(self, query: str) -> list[tuple]:
        with psycopg.connect(host="127.0.0.1", port=self.port, user="postgres", dbname="pgbouncer", autocommit=True) as conn:
            conn.prepare_threshold = None
            cursor = conn.execute(query, prepare=False)
            return cursor.fetchall() if cursor.description else []

    def env(self, data_dir: str, **extra: str) -> dict[str, str]:
        name = connection.settings_dict["NAME"]
        env = {k: v for k, v in os.environ.items() if k not in ("DATABASE_URL", "DATABASE_REPLICA_URL", "DISCORD_TOKEN")}
        env.update(
            DATABASE_URL=f"postgres://postgres@127.0.0.1:{self.port}/{name}",
            DATABASE_POOLER="pgbouncer",
            DATABASE_DIRECT_URL=f"postgres://postgres@{self.host}:{self.server_port}/{name}",
            GUILDHALL_DATA_DIR=data_dir,
            PYTHONUNBUFFERED="1",
        )
        env.update(extra)
        return env


@pytest.fixture
def bouncer(transactional_db) -> Iterator[Bouncer]:
    host, server_port = _server()
    directory = tempfile.mkdtemp(prefix="guildhall-pgbouncer-", dir="/tmp")
    found = Bouncer(directory, _free_port(), host, server_port)
    started = found.script(
        "start", "--port", str(found.port), "--pg-host", host, "--pg-port", str(server_port), "--statement-timeout-ms", "300"
    )
    try:
        assert started.returncode == 0, started.stdout + started.stderr
        yield found
    finally:
        found.script("stop")
        shutil.rmtree(directory, ignore_errors=True)


def _shell(env: dict[str, str], code: str) -> subprocess.CompletedProcess:
    return subprocess.run(
        [sys.executable, "manage.py", "shell", "-c", code], cwd=ROOT, env=env, capture_output=True, text=True, timeout=120
    )


_PROBE = """
import json, time
from django.conf import settings
from django.db import connection, transaction
from django.db.utils import OperationalError
from dbbackup.db.base import get_connector
from config.database import lock_for_transaction
from commands.models import CustomCommand
from commands.services import command_create

db = settings.DATABASES["default"]
out = {
    "port": int(db["PORT"]),
    "pool": "pool" in db["OPTIONS"],
    "startup_options": db["OPTIONS"].get("options"),
    "prepare_threshold": db["OPTIONS"].get("prepare_threshold", "unset"),
    "server_side_cursors_off": db.get("DISABLE_SERVER_SIDE_CURSORS"),
    "backup_port": int(get_connector("default").settings["PORT"]),
}
with connection.cursor() as cursor:
    cursor.execute("SHOW statement_timeout")
    out["statement_timeout"] = cursor.fetchone()[0]
started = time.monotonic()
try:
    with connection.cursor() as cursor:
        cursor.execute("SELECT pg_sleep(2)")
    out["sleep"] = "finished"
except OperationalError as exc:
    out["sleep"] = str(exc).splitlines()[0]
out["sleep_s"] = round(time.monotonic() - started, 2)
# Transaction-scoped advisory locks, writes, and one query run far past psycopg's prepare threshold.
for i in range(12):
    with transaction.atomic():
        lock_for_transaction("pgbouncer-test", i)
    command_create(guild_id=1, name=f"pooled{i}", template="hi", author_id=None)
out["iterated"] = sum(1 for _ in CustomCommand.objects.filter(guild_id=1).iterator(chunk_size=5))
print("RESULT " + json.dumps(out))
"""


def _result(done: subprocess.CompletedProcess) -> dict:
    assert done.returncode == 0, done.stdout + done.stderr
    line = next(line for line in done.stdout.splitlines() if line.startswith("RESULT "))
    return json.loads(line[len("RESULT ") :])


def test_the_product_runs_through_pgbouncer_with_its_pool_cursors_and_prepares_off(bouncer, tmp_path):
    found = _result(_shell(bouncer.env(str(tmp_path)), _PROBE))
    assert found["port"] == bouncer.port
    assert found["pool"] is False, "PgBouncer is the pool: Django's own must be off"
    assert found["startup_options"] is None, "PgBouncer refuses the options startup parameter"
    assert found["prepare_threshold"] is None
    assert found["server_side_cursors_off"] is True
    assert found["iterated"] == 12  # .iterator() works with no server-side cursor
    # pg_dump goes to PostgreSQL itself, not through the transaction pooler.
    assert found["backup_port"] == bouncer.server_port
    # The statement timeout holds through PgBouncer: a pg_sleep longer than 300 ms is cancelled.
    assert found["statement_timeout"] == "300ms"
    assert "statement timeout" in found["sleep"], found
    assert found["sleep_s"] < 1.5
    # And it all went through PgBouncer, in transaction mode.
    pools = bouncer.admin("SHOW POOLS")
    assert any(row[0] == connection.settings_dict["NAME"] for row in pools), pools
    assert ("pool_mode", "transaction") in [(row[0], row[1]) for row in bouncer.admin("SHOW CONFIG")]


def test_a_backup_through_the_pooler_dumps_from_postgresql_directly(bouncer, tmp_path):
    code = (
        "from pathlib import Path\n"
        "from ops.backups.engines.postgresql import dump_create, dump_check\n"
        f"dest = Path({str(tmp_path / 'dump.pgdump')!r})\n"
        "counts = dump_create('default', dest)\n"
        "dump_check(dest)\n"
        "print('RESULT', __import__('json').dumps({'tables': len(counts), 'size': dest.stat().st_size}))\n"
    )
    found = _result(_shell(bouncer.env(str(tmp_path)), code))
    assert found["tables"] > 10 and found["size"] > 0


@pytest.fixture
def named_bouncer(transactional_db) -> Iterator[Bouncer]:
    """A PgBouncer that knows only the product's database, as deploy/pgbouncer.sh --db sets one up."""
    host, server_port = _server()
    directory = tempfile.mkdtemp(prefix="guildhall-pgbouncer-", dir="/tmp")
    found = Bouncer(directory, _free_port(), host, server_port)
    name = connection.settings_dict["NAME"]
    started = found.script("start", "--port", str(found.port), "--pg-host", host, "--pg-port", str(server_port), "--db", name)
    try:
        assert started.returncode == 0, started.stdout + started.stderr
        yield found
    finally:
        found.script("stop")
        shutil.rmtree(directory, ignore_errors=True)


def test_a_restore_drill_through_the_pooler_uses_a_scratch_database_on_postgresql_directly(named_bouncer, tmp_path):
    bouncer = named_bouncer
    code = (
        "import json\n"
        "from ops.backups.services import backup_create\n"
        "from ops.backups.drill import backup_drill\n"
        "from commands.services import command_create\n"
        "command_create(guild_id=7, name='drilled', template='hi', author_id=None)\n"
        "made = backup_create(kind='scheduled')\n"
        "report = backup_drill(name=made.name)\n"
        "rows = {row.table: [row.expected, row.restored] for row in report.rows}\n"
        "print('RESULT', json.dumps({'ok': report.ok, 'commands': rows.get('commands_customcommand')}))\n"
    )
    env = bouncer.env(str(tmp_path), BACKUP_DIR=str(tmp_path / "backups"))
    found = _result(_shell(env, code))
    assert found["ok"] is True, found
    assert found["commands"] is not None and found["commands"][0] == found["commands"][1] >= 1
    # The scratch database was made, filled and counted on PostgreSQL itself: this PgBouncer
    # serves the product's database only, so going through it would have failed.


def _settings_load(env: dict[str, str]) -> subprocess.CompletedProcess:
    code = "import django, os; os.environ['DJANGO_SETTINGS_MODULE'] = 'config.settings'; django.setup()"
    return subprocess.run([sys.executable, "-c", code], cwd=ROOT, env=env, capture_output=True, text=True, timeout=60)


def test_the_pooler_setting_needs_the_direct_url_and_a_known_name(bouncer, tmp_path):
    env = bouncer.env(str(tmp_path))
    del env["DATABASE_DIRECT_URL"]
    done = _settings_load(env)
    assert done.returncode != 0 and "DATABASE_POOLER=pgbouncer needs DATABASE_DIRECT_URL" in done.stderr
    done = _settings_load(bouncer.env(str(tmp_path), DATABASE_POOLER="odyssey"))
    assert done.returncode != 0 and "DATABASE_POOLER must be pgbouncer or unset" in done.stderr
    assert _settings_load(bouncer.env(str(tmp_path))).returncode == 0


def test_pgbouncer_sh_explains_itself_and_refuses_bad_input(tmp_path):
    shown = subprocess.run([str(SCRIPT), "--help"], capture_output=True, text=True, timeout=10)
    assert shown.returncode == 0 and "pool_mode = transaction" in shown.stdout
    bad = subprocess.run([str(SCRIPT), "start", "--dir", str(tmp_path), "--port", "64x"], capture_output=True, text=True)
    assert bad.returncode == 2 and "not a whole number: 64x" in bad.stderr
    assert not (tmp_path / "pgbouncer.ini").exists()


def test_this_run_s_own_settings_when_it_runs_behind_the_pooler():
    """Under .ci/run's PgBouncer pass the whole process is pooled: its settings say so too."""
    db = settings.DATABASES["default"]
    if settings.DATABASE_POOLER:
        assert "pool" not in db["OPTIONS"] and "options" not in db["OPTIONS"]
        assert db["DISABLE_SERVER_SIDE_CURSORS"] is True and db["OPTIONS"]["prepare_threshold"] is None
    else:
        assert settings.DATABASE_POOLER == ""
        assert not db.get("DISABLE_SERVER_SIDE_CURSORS")
