"""Shared test set-up: a private cache, the PostgreSQL marker and small helpers.

Tests run on whatever DATABASE_URL/REDIS_URL name (SQLite and a file cache when unset).
``GUILDHALL_REQUIRE_POSTGRES=1`` (set by .ci/run) turns a skipped PostgreSQL test into
a failure, so a CI run on PostgreSQL can't quietly test less.
"""

from __future__ import annotations

import atexit
import os
import shutil
import tempfile

import pytest
from django.conf import settings
from django.db import connection

if settings.CACHES["default"]["BACKEND"].endswith("FileBasedCache"):
    # Keep the tests' cache away from a running instance's.
    settings.CACHES["default"]["LOCATION"] = tempfile.mkdtemp(prefix="guildhall-test-cache-")
    atexit.register(shutil.rmtree, settings.CACHES["default"]["LOCATION"], ignore_errors=True)


@pytest.fixture(scope="session")
def django_db_modify_db_settings(django_db_modify_db_settings_parallel_suffix):
    """Give each test run its own test database, so that runs side by side don't collide."""
    from pytest_django.fixtures import _set_suffix_to_test_databases

    _set_suffix_to_test_databases(suffix=f"p{os.getpid()}")


def pytest_collection_modifyitems(config, items):
    for item in items:
        if item.get_closest_marker("postgres"):
            item.fixturenames.insert(0, "_require_postgres")


@pytest.fixture
def _require_postgres(django_db_blocker):
    with django_db_blocker.unblock():
        vendor = connection.vendor
    if vendor != "postgresql":
        reason = "needs PostgreSQL: set DATABASE_URL=postgres://…"
        if os.environ.get("GUILDHALL_REQUIRE_POSTGRES") == "1":
            pytest.fail(f"GUILDHALL_REQUIRE_POSTGRES is set but the database is {vendor}: {reason}")
        pytest.skip(reason)


@pytest.fixture(autouse=True)
def _clear_cache():
    from django.core.cache import cache

    cache.clear()
    yield


GUILD = 100000000000000001
OTHER_GUILD = 100000000000000002


@pytest.fixture
def guild_id() -> int:
    return GUILD
