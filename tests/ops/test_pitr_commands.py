"""The point-in-time recovery commands on either engine, when recovery is not set up (the default)."""

from __future__ import annotations

import pytest
from django.core.management import CommandError, call_command


@pytest.fixture
def unconfigured(settings):
    settings.PITR_PGBACKREST_STANZA, settings.PITR_PGBACKREST_CONFIG = "", ""
    settings.LITESTREAM_REPLICA_URL = ""


@pytest.mark.django_db
@pytest.mark.parametrize(
    "command",
    [
        ["pitr_status"],
        ["pitr_backup", "--type", "full"],
        ["pitr_restore", "--to", "2026-12-01 12:34:56", "--into", "/tmp/never-made-by-this-test"],
    ],
)
def test_it_says_recovery_is_not_configured_and_exits_2(unconfigured, command):
    with pytest.raises(CommandError, match="point-in-time recovery is not configured") as raised:
        call_command(*command)
    assert raised.value.returncode == 2


@pytest.mark.django_db
def test_it_refuses_a_moment_it_cannot_read(unconfigured):
    with pytest.raises(CommandError, match="--to must look like 2026-12-01 12:34:56") as raised:
        call_command("pitr_restore", "--to", "12/01/2026", "--into", "/tmp/x")
    assert raised.value.returncode == 1
