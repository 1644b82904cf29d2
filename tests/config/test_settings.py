"""Settings come from the environment; bad values stop start-up naming the variable."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[2]
PROBE = (
    "import django, json; django.setup(); from django.conf import settings as s; "
    "d = s.DATABASES['default']; "
    "print(json.dumps({'engine': d['ENGINE'], 'options': d.get('OPTIONS', {}), 'cache': s.CACHES['default']['BACKEND'], "
    "'key': s.SECRET_KEY, 'q': s.Q_CLUSTER, 'debug': s.DEBUG, 'replica': 'replica' in s.DATABASES}))"
)
_CLEARED = (
    "DATABASE_URL",
    "DATABASE_REPLICA_URL",
    "REDIS_URL",
    "DEBUG",
    "SECRET_KEY",
    "DB_POOL_MAX",
    "LOG_FORMAT",
    "LOG_LEVEL",
    "Q_TIMEOUT",
    "Q_RETRY",
    "SHARD_IDS",
    "SHARD_COUNT",
    "DISCORD_API_BASE",
)


def _start(tmp_path, **env) -> subprocess.CompletedProcess:
    base = {k: v for k, v in os.environ.items() if k not in _CLEARED}
    base.update({"DJANGO_SETTINGS_MODULE": "config.settings", "GUILDHALL_DATA_DIR": str(tmp_path)})
    base.update(env)
    return subprocess.run([sys.executable, "-c", PROBE], cwd=ROOT, env=base, capture_output=True, text=True, timeout=60)


def _refused(result: subprocess.CompletedProcess, variable: str) -> None:
    assert result.returncode != 0, result.stdout
    last = result.stderr.strip().splitlines()[-1]
    assert last.startswith("django.core.exceptions.ImproperlyConfigured"), result.stderr
    assert variable in last


@pytest.mark.parametrize(
    ("variable", "value"),
    [
        ("DATABASE_URL", "not-a-url"),
        ("DATABASE_URL", "mysql://root@127.0.0.1/guildhall"),
        ("DATABASE_URL", "postgres://u@h:notaport/x"),
        ("DATABASE_URL", "postgres://u@127.0.0.1/"),
        ("DATABASE_REPLICA_URL", "ftp://example"),
        ("DB_POOL_MAX", "ten"),
        ("DB_POOL_MAX", "0"),
        ("DEBUG", "maybe"),
        ("REDIS_URL", "http://127.0.0.1:6379"),
        ("LOG_FORMAT", "xml"),
        ("LOG_LEVEL", "LOUD"),
        ("SHARD_IDS", "0,x"),
        ("DISCORD_API_BASE", "discord.com/api"),
    ],
)
def test_it_refuses_a_bad_value_naming_the_variable(tmp_path, variable, value):
    _refused(_start(tmp_path, **{variable: value}), variable)


def test_it_refuses_a_task_timeout_not_below_retry(tmp_path):
    _refused(_start(tmp_path, Q_TIMEOUT="200", Q_RETRY="100"), "Q_TIMEOUT")


def test_it_requires_a_secret_key_when_debug_is_off(tmp_path):
    _refused(_start(tmp_path, DEBUG="0"), "SECRET_KEY")


def test_it_generates_the_embedded_secret_key_once(tmp_path):
    first = _start(tmp_path)
    second = _start(tmp_path)
    assert first.returncode == 0, first.stderr
    assert (tmp_path / "secret_key").exists()
    assert '"key"' in first.stdout and first.stdout == second.stdout


def test_it_defaults_to_sqlite_in_wal_mode_with_immediate_transactions(tmp_path):
    import json

    result = _start(tmp_path)
    assert result.returncode == 0, result.stderr
    probe = json.loads(result.stdout)
    assert probe["engine"] == "django.db.backends.sqlite3"
    assert probe["options"]["transaction_mode"] == "IMMEDIATE"
    assert "journal_mode=WAL" in probe["options"]["init_command"]
    assert probe["options"]["timeout"] >= 5
    assert probe["cache"].endswith("FileBasedCache")  # shared by processes, unlike locmem
    assert probe["q"]["catch_up"] is False and probe["q"]["timeout"] < probe["q"]["retry"] and probe["q"]["max_attempts"]


def test_it_uses_the_pool_and_a_statement_timeout_on_postgres(tmp_path):
    import json

    result = _start(
        tmp_path,
        DATABASE_URL="postgres://postgres@127.0.0.1:5432/guildhall",
        DATABASE_REPLICA_URL="postgres://postgres@127.0.0.1:5432/guildhall",
        REDIS_URL="redis://127.0.0.1:6379/3",
        DB_POOL_MAX="7",
    )
    assert result.returncode == 0, result.stderr
    probe = json.loads(result.stdout)
    assert probe["engine"] == "django.db.backends.postgresql"
    assert probe["options"]["pool"]["max_size"] == 7
    assert "statement_timeout" in probe["options"]["options"]
    assert probe["cache"] == "django_redis.cache.RedisCache"
    assert probe["replica"] is True


def test_it_turns_on_pgbackrest_with_the_stanza_alone_and_refuses_a_config_without_one(tmp_path):
    probe = "import django; django.setup(); from django.conf import settings as s; print(s.PITR_PGBACKREST_CONFIG)"
    base = {k: v for k, v in os.environ.items() if k not in (*_CLEARED, "PITR_PGBACKREST_STANZA", "PITR_PGBACKREST_CONFIG")}
    base.update({"DJANGO_SETTINGS_MODULE": "config.settings", "GUILDHALL_DATA_DIR": str(tmp_path)})

    def run(**env: str) -> subprocess.CompletedProcess:
        return subprocess.run(
            [sys.executable, "-c", probe], cwd=ROOT, env={**base, **env}, capture_output=True, text=True, timeout=60
        )

    assert run(PITR_PGBACKREST_STANZA="guildhall").stdout.strip() == "/etc/pgbackrest/guildhall.conf"  # the script's default
    chosen = run(PITR_PGBACKREST_STANZA="guildhall", PITR_PGBACKREST_CONFIG="/srv/pgbr.conf")
    assert chosen.stdout.strip() == "/srv/pgbr.conf"
    _refused(run(PITR_PGBACKREST_CONFIG="/srv/pgbr.conf"), "PITR_PGBACKREST_STANZA")
