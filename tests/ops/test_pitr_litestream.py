"""Point-in-time recovery on SQLite with the real Litestream: the drill and the refusals.

An installation of its own in a temp dir (its own SQLite file, DATABASE_URL unset, so this runs
on the PostgreSQL CI run too): `manage.py migrate`, then the Procfile's litestream process
(`manage.py litestream_config --replicate`), rows written through the product's services in
subprocesses, and ops.pitr.litestream's window() and restore() called there, as pitr_status and
pitr_restore call them.
"""

from __future__ import annotations

import contextlib
import json
import os
import signal
import sqlite3
import subprocess
import sys
import time
import uuid
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest

from ops.pitr import litestream
from tests.s3server import BUCKET, CREDENTIALS, s3_server

ROOT = Path(__file__).resolve().parents[2]


def _env(data: Path, replica_url: str) -> dict[str, str]:
    env = {k: v for k, v in os.environ.items() if k not in ("DATABASE_URL", "DATABASE_REPLICA_URL", "REDIS_URL")}
    env.update(GUILDHALL_DATA_DIR=str(data), LITESTREAM_REPLICA_URL=replica_url, DJANGO_SETTINGS_MODULE="config.settings")
    return env


def _product(env: dict[str, str], code: str, *, check: bool = True) -> dict:
    """Run ``code`` inside the installation (Django set up); it assigns ``out``, printed back as JSON."""
    script = "import django, json\ndjango.setup()\nout = {}\n" + code + "\nprint('OUT ' + json.dumps(out, default=str))\n"
    done = subprocess.run([sys.executable, "-c", script], cwd=ROOT, env=env, capture_output=True, text=True, timeout=120)
    if check and done.returncode != 0:
        raise AssertionError(f"exit {done.returncode}\n{done.stdout}\n{done.stderr}")
    lines = [line for line in done.stdout.splitlines() if line.startswith("OUT ")]
    return json.loads(lines[-1][4:]) if lines else {"exit": done.returncode, "stderr": done.stderr}


def _write_commands(env: dict[str, str], names: list[str]) -> None:
    _product(
        env,
        "from commands.services.custom_commands import command_create\n"
        f"for name in {names!r}:\n"
        "    command_create(guild_id=1, name=name, template='hello', author_id=None)\n",
    )


def _sync(data: Path) -> None:
    """Ship everything written so far (the control socket's sync, waiting for the replica)."""
    db = data / "guildhall.sqlite3"
    subprocess.run(
        [litestream.binary(), "sync", "-wait", "-timeout", "30", "-socket", str(data / "litestream.sock"), str(db)],
        check=True,
        capture_output=True,
        timeout=60,
    )


def _names(path: Path) -> list[str]:
    with sqlite3.connect(f"{path.as_uri()}?mode=ro", uri=True) as db:
        return [row[0] for row in db.execute("SELECT name FROM commands_customcommand ORDER BY name")]


@contextlib.contextmanager
def _running(base: Path, env: dict[str, str]) -> Iterator[dict]:
    """Migrate the installation ``env`` names and run its litestream process (the Procfile's command) meanwhile."""
    data = Path(env["GUILDHALL_DATA_DIR"])
    subprocess.run([sys.executable, "manage.py", "migrate", "--noinput", "-v0"], cwd=ROOT, env=env, check=True, timeout=300)
    log = open(base / "litestream.log", "w")
    process = subprocess.Popen(
        [sys.executable, "manage.py", "litestream_config", "--replicate"], cwd=ROOT, env=env, stdout=log, stderr=log
    )
    try:
        deadline = time.monotonic() + 30
        while not (data / "litestream.sock").exists():
            assert process.poll() is None, (base / "litestream.log").read_text()
            assert time.monotonic() < deadline, "litestream did not open its control socket"
            time.sleep(0.1)
        yield {"env": env, "data": data, "base": base, "process": process}
    finally:
        process.send_signal(signal.SIGTERM)
        try:
            process.wait(timeout=30)
        except subprocess.TimeoutExpired:
            process.kill()
            process.wait()
        log.close()


@pytest.fixture(scope="module")
def installation(tmp_path_factory):
    """A migrated installation with its litestream process replicating to a local directory."""
    base = tmp_path_factory.mktemp("pitr-litestream")
    with _running(base, _env(base / "data", f"file://{base / 'replica'}")) as running:
        yield running


def test_it_restores_exactly_the_rows_written_before_the_moment(installation):
    env, data, base = installation["env"], installation["data"], installation["base"]
    first = ["first-a", "first-b", "first-c"]
    second = ["second-a", "second-b"]
    _write_commands(env, first)
    _sync(data)  # the first rows are in the replica before the moment is noted
    moment = datetime.now(UTC)
    _write_commands(env, second)
    _sync(data)
    into = base / "restored.sqlite3"

    out = _product(
        env,
        "from datetime import datetime\nfrom ops.pitr import litestream\n"
        "w = litestream.window()\n"
        "out['window'] = [w.earliest.isoformat(), w.latest.isoformat(), w.last_archived, w.problem, len(w.backups)]\n"
        "lines = []\n"
        f"litestream.restore(datetime.fromisoformat({moment.isoformat()!r}), {str(into)!r}, progress=lines.append)\n"
        "out['progress'] = lines\n",
    )

    assert _names(into) == first
    assert _names(data / "guildhall.sqlite3") == sorted(first + second)  # the live file is untouched
    earliest, latest, last_archived, problem, snapshots = out["window"]
    assert datetime.fromisoformat(earliest) <= moment <= datetime.fromisoformat(latest)
    assert last_archived.endswith(".ltx") and problem == "" and snapshots >= 1
    assert out["progress"][0].startswith("Restoring ") and "integrity check passed" in out["progress"][-1]
    assert not list(base.glob("restored.sqlite3.partial*"))
    with sqlite3.connect(into) as db:
        assert db.execute("PRAGMA journal_mode").fetchone()[0] == "wal"
        assert db.execute("PRAGMA quick_check").fetchone()[0] == "ok"


def test_it_restores_the_latest_after_the_file_is_lost(installation):
    env, data, base = installation["env"], installation["data"], installation["base"]
    _write_commands(env, ["latest-a"])
    _sync(data)
    into = base / "latest.sqlite3"

    _product(
        env,
        f"from datetime import datetime, UTC\nfrom ops.pitr import litestream\nlitestream.restore(datetime.now(UTC), {str(into)!r})",
    )

    assert "latest-a" in _names(into)
    assert _names(into) == _names(data / "guildhall.sqlite3")


def test_it_restores_a_moment_with_pitr_restore_and_shows_the_window_with_pitr_status(installation):
    env, data, base = installation["env"], installation["data"], installation["base"]
    _write_commands(env, ["command-a"])
    _sync(data)
    moment = datetime.now(UTC)
    _write_commands(env, ["command-b"])
    _sync(data)
    into = base / "by-command.sqlite3"

    def manage(*args: str) -> subprocess.CompletedProcess:
        return subprocess.run(
            [sys.executable, "manage.py", *args], cwd=ROOT, env=env, capture_output=True, text=True, timeout=120
        )

    status = manage("pitr_status")
    restored = manage("pitr_restore", "--to", f"{moment:%Y-%m-%d %H:%M:%S.%f}", "--into", str(into))
    refused = manage("pitr_restore", "--to", f"{moment:%Y-%m-%d %H:%M:%S}", "--into", str(data / "guildhall.sqlite3"))

    assert status.returncode == 0, status.stderr
    assert "engine:              litestream" in status.stdout and "archiving: ok" in status.stdout
    assert f"repository:          file://{base / 'replica'}" in status.stdout
    assert restored.returncode == 0, restored.stderr
    assert "Restoring " in restored.stdout and "restored to " in restored.stdout
    names = _names(into)
    assert "command-a" in names and "command-b" not in names
    assert refused.returncode == 1 and "is the live database" in refused.stderr


def test_it_refuses_the_live_file_an_existing_file_and_moments_outside_the_window(installation):
    env, data, base = installation["env"], installation["data"], installation["base"]
    taken = base / "taken.sqlite3"
    taken.write_bytes(b"keep me")
    before = _names(data / "guildhall.sqlite3")
    now = datetime.now(UTC)
    cases = {
        "live": (now, str(data / "guildhall.sqlite3")),
        "taken": (now, str(taken)),
        "no_dir": (now, str(base / "missing" / "x.sqlite3")),
        "too_old": (now - timedelta(days=30), str(base / "old.sqlite3")),
        "future": (now + timedelta(hours=2), str(base / "future.sqlite3")),
    }
    code = "from datetime import datetime\nfrom ops.pitr import litestream\n"
    for key, (moment, into) in cases.items():
        code += (
            f"try:\n    litestream.restore(datetime.fromisoformat({moment.isoformat()!r}), {into!r})\n"
            f"    out[{key!r}] = 'restored'\nexcept litestream.LitestreamError as exc:\n    out[{key!r}] = str(exc)\n"
        )

    out = _product(env, code)

    assert "is the live database" in out["live"]
    assert "already exists" in out["taken"] and taken.read_bytes() == b"keep me"
    assert "is not a directory" in out["no_dir"]
    assert "before the earliest restorable moment" in out["too_old"]
    assert "is in the future" in out["future"]
    assert not (base / "old.sqlite3").exists() and not (base / "future.sqlite3").exists()
    assert _names(data / "guildhall.sqlite3") == before


def test_it_says_what_is_missing_when_not_configured_or_the_replica_is_empty(tmp_path):
    off = _env(tmp_path / "off", "")
    check = subprocess.run([sys.executable, "manage.py", "litestream_config", "--check"], cwd=ROOT, env=off, timeout=60)
    assert check.returncode == 1
    out = _product(
        off,
        "from datetime import datetime\nfrom ops.pitr import litestream\nout['configured'] = litestream.configured()\n"
        "try:\n    litestream.restore(datetime.now(), '/tmp/x.sqlite3')\nexcept litestream.LitestreamError as exc:\n"
        "    out['error'] = str(exc)\n",
    )
    assert out == {"configured": False, "error": out["error"]} and "set LITESTREAM_REPLICA_URL" in out["error"]

    (tmp_path / "empty").mkdir()
    empty = _env(tmp_path / "data", f"file://{tmp_path / 'empty'}")
    out = _product(empty, "from ops.pitr import litestream\nw = litestream.window()\nout['w'] = [w.earliest, w.problem]")
    assert out["w"][0] is None and "holds nothing yet" in out["w"][1]

    bad = subprocess.run(
        [sys.executable, "manage.py", "check"], cwd=ROOT, env=_env(tmp_path / "bad", "ftp://x/y"), capture_output=True, text=True
    )
    assert bad.returncode != 0 and "LITESTREAM_REPLICA_URL must be file:///" in bad.stderr


def test_it_replicates_to_the_s3_store_and_restores_from_it(tmp_path, s3_server):
    prefix = f"litestream-{uuid.uuid4().hex[:8]}"
    env = _env(tmp_path / "data", f"s3://{BUCKET}/{prefix}")
    # The same store the off-site backups use: their settings and Litestream's from one endpoint.
    env.update(CREDENTIALS, BACKUP_STORAGE_URL=f"s3://{BUCKET}/{prefix}-backups", BACKUP_S3_ENDPOINT_URL=s3_server.endpoint)
    env.update(AWS_CONFIG_FILE=str(tmp_path / "none"), AWS_SHARED_CREDENTIALS_FILE=str(tmp_path / "none"))
    with _running(tmp_path, env) as running:
        _write_commands(env, ["s3-first"])
        _sync(running["data"])
        moment = datetime.now(UTC)
        _write_commands(env, ["s3-second"])
        _sync(running["data"])
    into = tmp_path / "from-s3.sqlite3"

    out = _product(
        env,
        "from datetime import datetime\nfrom ops.pitr import litestream\nw = litestream.window()\n"
        "out['window'] = [w.repository, w.problem, w.earliest is not None]\n"
        f"litestream.restore(datetime.fromisoformat({moment.isoformat()!r}), {str(into)!r})\n",
    )

    assert out["window"] == [f"s3://{BUCKET}/{prefix}", "", True]
    assert _names(into) == ["s3-first"]
    assert any(key.endswith(".ltx") for key in s3_server.keys(prefix + "/"))
