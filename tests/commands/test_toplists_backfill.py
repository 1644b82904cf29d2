"""The upgrade fills the rolling toplists from the last 30 days of the ledger (migration 0009)."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

import pytest
from django.db import connection
from django.db.migrations.executor import MigrationExecutor

pytestmark = pytest.mark.django_db(transaction=True)
BEFORE, AFTER = ("commands", "0008_cookie_toplists"), ("commands", "0009_cookie_toplists_backfill")


def test_it_backfills_the_windows_from_the_ledger():
    executor = MigrationExecutor(connection)
    executor.migrate([BEFORE])
    apps = executor.loader.project_state([BEFORE]).apps
    ledger = apps.get_model("commands", "CookieLedger")
    now = datetime.now(UTC)
    rows = [(10, 1, "give", 1), (10, 1, "thanks", 2), (10, -1, "take", 3), (20, 1, "give", 10), (20, 50, "admin_set", 1)]
    rows += [(30, 1, "give", 40)]  # older than either window
    for receiver, delta, reason, days_ago in rows:
        ledger.objects.create(
            guild_id=5, giver_id=1, receiver_id=receiver, delta=delta, reason=reason, created_at=now - timedelta(days=days_ago)
        )
    executor = MigrationExecutor(connection)
    executor.migrate([AFTER])
    apps = executor.loader.project_state([AFTER]).apps
    window = apps.get_model("commands", "CookieWindow")
    totals = {(w.period, w.member_id): w.total for w in window.objects.all()}
    assert totals == {("7d", 10): 1, ("30d", 10): 1, ("30d", 20): 1}
    assert apps.get_model("commands", "CookieWindowClock").objects.count() == 2
