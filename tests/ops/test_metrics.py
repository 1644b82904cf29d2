"""/metrics: django-prometheus's metrics plus Guildhall's gauges, read cheaply at scrape time."""

from __future__ import annotations

import os
import re
import time
from datetime import timedelta

import pytest
from django.contrib.auth.models import User
from django.db import connection
from django.test import Client
from django.test.utils import CaptureQueriesContext
from django.utils import timezone

from commands.models import CookieLedger
from ops.models import SweepRun
from ops.status.metrics import BACKLOG_CAP, COLLECTOR, metrics_collector_register
from timers.models import TimedRole, TimerState


@pytest.fixture
def filled(db, settings, tmp_path):
    now = timezone.now()
    active = TimerState.ACTIVE
    TimedRole.objects.bulk_create(
        [
            *(
                TimedRole(guild_id=1, member_id=i, role_id=7, state=active, expires_at=now + timedelta(hours=i + 1))
                for i in range(3)
            ),
            TimedRole(guild_id=1, member_id=10, role_id=7, state=active, expires_at=now - timedelta(minutes=1)),
            TimedRole(guild_id=1, member_id=11, role_id=7, state=TimerState.EXPIRED, expires_at=now - timedelta(days=1)),
            TimedRole(guild_id=1, member_id=12, role_id=7, state=TimerState.PAUSED, paused_remaining=timedelta(hours=1)),
        ]
    )
    SweepRun.objects.create(
        worker="w",
        started_at=now - timedelta(minutes=2),
        finished_at=now - timedelta(minutes=1),
        latency_p50_ms=120.0,
        latency_max_ms=480.0,
    )
    for giver in range(5):
        CookieLedger.objects.create(guild_id=1, giver_id=giver, receiver_id=99, delta=1, reason="give", created_at=now)
    settings.BACKUP_DIR = tmp_path
    backup = tmp_path / "guildhall-2024-01-01.sqlite3.gz"
    backup.write_bytes(b"x")
    os.utime(backup, (time.time() - 3600, time.time() - 3600))
    return tmp_path


def _sample(text: str, name: str) -> float:
    match = re.search(rf"^{re.escape(name)} ([0-9.e+-]+)$", text, re.MULTILINE)
    assert match, f"{name} missing from:\n{text}"
    return float(match.group(1))


@pytest.fixture
def client(settings):
    """Prometheus: a scraper with the configured bearer token."""
    settings.METRICS_TOKEN = "test-metrics-token"
    return Client(headers={"Authorization": "Bearer test-metrics-token"})


def test_it_refuses_a_scrape_without_the_token(settings, db):
    settings.METRICS_TOKEN = "test-metrics-token"
    assert Client().get("/metrics").status_code == 401
    assert Client(headers={"Authorization": "Bearer wrong"}).get("/metrics").status_code == 401
    settings.METRICS_TOKEN = ""
    assert Client(headers={"Authorization": "Bearer "}).get("/metrics").status_code == 401


def test_it_lets_staff_read_the_metrics(db):
    staff = Client()
    staff.force_login(User.objects.create_user("metrics-reader", password="pw-metrics-123", is_staff=True))
    assert staff.get("/metrics").status_code == 200


def test_it_exposes_the_guildhall_gauges(client, filled):
    response = client.get("/metrics")
    assert response.status_code == 200
    text = response.content.decode()
    assert "django_http_requests_before_middlewares_total" in text  # django-prometheus's own
    assert _sample(text, "guildhall_timers_active") == 4
    assert _sample(text, "guildhall_timers_due_backlog") == 1
    assert _sample(text, 'guildhall_sweep_latency_ms{stat="p50"}') == 120
    assert _sample(text, 'guildhall_sweep_latency_ms{stat="max"}') == 480
    assert _sample(text, "guildhall_cookie_gives_total") >= 5
    assert 3590 <= _sample(text, "guildhall_backup_age_seconds") < 3700


def test_it_leaves_out_the_backup_age_when_there_is_no_backup(client, filled):
    for path in filled.iterdir():
        path.unlink()
    text = client.get("/metrics").content.decode()
    assert "guildhall_backup_age_seconds" not in text
    assert "guildhall_timers_active" in text


def test_it_registers_the_collector_once(client, filled):
    metrics_collector_register()
    metrics_collector_register()
    text = client.get("/metrics").content.decode()
    assert text.count("# TYPE guildhall_timers_active gauge") == 1


def test_it_reads_cheaply(filled):
    with CaptureQueriesContext(connection) as queries:
        families = {family.name: family for family in COLLECTOR.collect()}
    assert set(families) >= {"guildhall_timers_active", "guildhall_timers_due_backlog", "guildhall_cookie_gives_total"}
    sql = [query["sql"] for query in queries]
    backlog = [q for q in sql if "timers_timedrole" in q and "LIMIT" in q]
    assert backlog and f"LIMIT {BACKLOG_CAP}" in backlog[0]
    # The ledger is never counted: a catalogue lookup or its highest id only.
    assert not any("cookieledger" in q.lower() and "count(" in q.lower() for q in sql)
    assert len(sql) <= 6


@pytest.mark.django_db
def test_it_counts_timers_from_the_partial_index():
    now = timezone.now()
    TimedRole.objects.bulk_create(
        [
            TimedRole(guild_id=1, member_id=i, role_id=7, state=TimerState.EXPIRED, expires_at=now - timedelta(days=1))
            for i in range(5000)
        ]
        + [
            TimedRole(
                guild_id=1, member_id=5000 + i, role_id=7, state=TimerState.ACTIVE, expires_at=now + timedelta(minutes=i - 5)
            )
            for i in range(50)
        ],
        batch_size=2000,
    )
    with connection.cursor() as cursor:
        cursor.execute("ANALYZE" if connection.vendor == "sqlite" else f"ANALYZE {TimedRole._meta.db_table}")
    with CaptureQueriesContext(connection) as queries:
        families = {family.name: family for family in COLLECTOR.collect()}
    assert families["guildhall_timers_active"].samples[0].value == 50
    assert families["guildhall_timers_due_backlog"].samples[0].value == 6
    timer_queries = [q["sql"] for q in queries if "timers_timedrole" in q["sql"]]
    assert len(timer_queries) == 2
    explain = "EXPLAIN QUERY PLAN " if connection.vendor == "sqlite" else "EXPLAIN "
    with connection.cursor() as cursor:
        for sql in timer_queries:
            cursor.execute(explain + sql)
            plan = "\n".join(str(row) for row in cursor.fetchall())
            assert "timer_due_expiry" in plan, plan
