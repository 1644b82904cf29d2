"""The read replica's settings (config/settings.py, "Read replica"), read in a fresh process each."""

from __future__ import annotations

import json
import os
import subprocess
import sys

from tests.scale.conftest import ROOT

PROBE = """
import json
from django.conf import settings as s
print(json.dumps({
    "databases": {alias: {"options": c.get("OPTIONS", {}), "max_age": c.get("CONN_MAX_AGE"), "test": c.get("TEST", {})}
                  for alias, c in s.DATABASES.items()},
    "routers": s.DATABASE_ROUTERS,
    "middleware": s.MIDDLEWARE,
    "lag": s.REPLICA_MAX_LAG_S,
    "interval": s.REPLICA_CHECK_INTERVAL_S,
}, default=str))
"""


def probe(**env: str) -> subprocess.CompletedProcess:
    base = {k: v for k, v in os.environ.items() if not k.startswith(("DATABASE_", "REPLICA_", "REDIS_URL"))}
    base.update(DJANGO_SETTINGS_MODULE="config.settings", **env)
    return subprocess.run([sys.executable, "-c", PROBE], cwd=ROOT, env=base, capture_output=True, text=True, timeout=60)


def test_it_names_each_alias_and_keeps_replica_connections_out_of_the_pool(tmp_path):
    done = probe(
        DATABASE_URL="postgres://postgres@127.0.0.1:5999/guildhall",
        DATABASE_REPLICA_URL="postgres://postgres@127.0.0.1:5998/guildhall",
        GUILDHALL_DATA_DIR=str(tmp_path),
    )
    assert done.returncode == 0, done.stderr
    found = json.loads(done.stdout)
    primary, replica = found["databases"]["default"], found["databases"]["replica"]
    assert primary["options"]["application_name"] == "guildhall-primary"
    assert replica["options"]["application_name"] == "guildhall-replica"
    assert "pool" in primary["options"] and "pool" not in replica["options"]
    assert replica["options"]["connect_timeout"] == 2 and replica["max_age"] == 60
    assert replica["test"] == {"MIRROR": "default"}  # in-process tests read the default database
    assert found["routers"] == ["config.replicas.ReplicaRouter"]
    middleware = found["middleware"]
    auth = middleware.index("django.contrib.auth.middleware.AuthenticationMiddleware")
    assert middleware[auth + 1] == "config.replicas.ReplicaPinMiddleware"
    assert (found["lag"], found["interval"]) == (30.0, 5.0)


def test_it_adds_nothing_without_a_replica(tmp_path):
    done = probe(GUILDHALL_DATA_DIR=str(tmp_path))
    assert done.returncode == 0, done.stderr
    found = json.loads(done.stdout)
    assert list(found["databases"]) == ["default"]
    assert found["routers"] == [] and "config.replicas.ReplicaPinMiddleware" not in found["middleware"]


def test_it_refuses_a_lag_limit_that_is_not_a_number(tmp_path):
    done = probe(REPLICA_MAX_LAG_S="half a minute", GUILDHALL_DATA_DIR=str(tmp_path))
    assert done.returncode != 0
    assert "REPLICA_MAX_LAG_S" in done.stderr
