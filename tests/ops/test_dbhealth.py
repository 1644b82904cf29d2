"""Database health: the checks run on this engine, the page renders, snapshots feed the plots."""

from __future__ import annotations

from datetime import timedelta
from html import escape

import pytest
from django.contrib.auth.models import User
from django.core.management import call_command
from django.db import connection
from django.utils import timezone
from django_q.models import Schedule

from config.checks import FAIL, PASS, WARN
from ops.dbhealth.checks import checks_for_vendor
from ops.dbhealth.snapshots import growth_charts
from ops.dbhealth.svg import Series, line_chart
from ops.dbhealth.tasks import health_snapshot
from ops.models import HealthSnapshot, SweepRun
from ops.schedules import SCHEDULES

URL = "/admin/ops/database/"
NAMES = {
    "postgresql": {
        "Database size",
        "Table and index sizes",
        "Index usage",
        "Unused indexes",
        "Duplicate indexes",
        "Invalid indexes",
        "Sequential scans",
        "Table cache hit rate",
        "Index cache hit rate",
        "Connections",
        "Long-running queries",
        "Blocked queries",
        "Vacuum and analyze",
        "Sequence danger",
        "Transaction ID danger",
        "Replication lag",
        "Slow queries",
    },
    "sqlite": {"File size", "Pages", "Free pages", "WAL size", "Integrity (quick_check)", "Journal mode", "Table rows"},
}


@pytest.fixture
def staff_client(client, db):
    client.force_login(User.objects.create_user("ops", password="pw-ops-12345", is_staff=True))
    return client


def _by_name():
    return {check.name: check for check in checks_for_vendor()}


@pytest.mark.django_db
def test_it_runs_every_check_of_this_engine_without_error():
    checks = _by_name()
    assert set(checks) == NAMES[connection.vendor]
    for check in checks.values():
        assert check.status in (PASS, WARN, FAIL), check
        assert not check.error, f"{check.name}: {check.error}"
        assert check.value and check.threshold, check


@pytest.mark.django_db
def test_it_reads_the_engine_basics():
    SweepRun.objects.create(worker="w", started_at=timezone.now(), finished_at=timezone.now())
    checks = _by_name()
    if connection.vendor == "sqlite":
        assert (checks["Integrity (quick_check)"].status, checks["Integrity (quick_check)"].value) == (PASS, "ok")
        assert (checks["Journal mode"].status, checks["Journal mode"].value) == (PASS, "wal")
        rows = {table: count for table, count, _size in checks["Table rows"].rows}
        assert rows["ops_sweeprun"] == 1 and "commands_cookieledger" in rows
        assert checks["Pages"].rows[0][0] > 0
    else:
        assert checks["Invalid indexes"].status == PASS
        assert checks["Transaction ID danger"].status == PASS
        assert checks["Replication lag"].value == "no replicas"
        with connection.cursor() as cursor:
            cursor.execute("SELECT 1 FROM pg_extension WHERE extname = 'pg_stat_statements'")
            installed = cursor.fetchone() is not None
        if not installed:
            assert checks["Slow queries"].status == PASS
            assert "pg_stat_statements is not installed" in checks["Slow queries"].note


@pytest.mark.postgres
@pytest.mark.django_db
def test_it_flags_unused_and_duplicate_indexes():
    with connection.cursor() as cursor:
        cursor.execute("CREATE INDEX gh_test_worker ON ops_sweeprun (worker)")
        cursor.execute("CREATE INDEX gh_test_worker_again ON ops_sweeprun (worker)")
        cursor.execute("CREATE INDEX gh_test_vendor ON ops_healthsnapshot (vendor)")
        cursor.execute("CREATE INDEX gh_test_vendor_taken ON ops_healthsnapshot (vendor, taken_at)")
    checks = _by_name()
    unused = {index for _table, index, _size in checks["Unused indexes"].rows}
    assert {"gh_test_worker", "gh_test_vendor_taken"} <= unused
    assert checks["Unused indexes"].status == WARN
    duplicates = {(index, covering) for _table, index, covering, _size in checks["Duplicate indexes"].rows}
    assert ("gh_test_vendor", "gh_test_vendor_taken") in duplicates
    # Of two identical indexes exactly one is reported.
    assert len({pair for pair in duplicates if set(pair) == {"gh_test_worker", "gh_test_worker_again"}}) == 1
    assert checks["Duplicate indexes"].status == WARN


@pytest.mark.django_db
def test_it_shows_every_check_to_staff(staff_client):
    response = staff_client.get(URL)
    assert response.status_code == 200
    page = response.content.decode()
    for name in NAMES[connection.vendor]:
        assert escape(name) in page
    assert "gh-badge gh-" in page and "No snapshots yet" in page


@pytest.mark.django_db
def test_it_sends_anonymous_users_to_the_login_page(client):
    response = client.get(URL)
    assert response.status_code == 302
    assert response["Location"].startswith("/admin/login/")


@pytest.mark.django_db
def test_it_refuses_members_who_are_not_staff(client):
    client.force_login(User.objects.create_user("member", password="pw-member-123"))
    assert client.get(URL).status_code == 302


@pytest.mark.django_db
def test_it_takes_a_snapshot_in_the_task():
    result = health_snapshot()
    snapshot = HealthSnapshot.objects.get()
    assert f"snapshot {snapshot.pk}" in result
    assert snapshot.vendor == connection.vendor and snapshot.database_bytes > 0
    assert snapshot.tables and all("rows" in stats for stats in snapshot.tables.values())
    assert {check["name"] for check in snapshot.checks.values()} == NAMES[connection.vendor]


@pytest.mark.django_db
def test_it_plots_growth_from_snapshots(staff_client):
    now = timezone.now()
    for days, size in ((3, 1_000_000), (2, 2_000_000), (1, 3_500_000)):
        HealthSnapshot.objects.create(
            taken_at=now - timedelta(days=days),
            vendor=connection.vendor,
            database_bytes=size,
            tables={"timers_timedrole": {"rows": days * 10, "bytes": size // 2}, "<odd>": {"rows": 1, "bytes": 10}},
        )
    charts = growth_charts(list(HealthSnapshot.objects.order_by("taken_at")))
    assert charts["size"].startswith("<svg") and "<polyline" in charts["size"]
    assert "timers_timedrole" in charts["tables"]
    assert "&lt;odd&gt;" in charts["tables"] and "<odd>" not in charts["tables"]
    page = staff_client.get(URL).content.decode()
    assert "Database size" in page and "<polyline" in page and "No snapshots yet" not in page


@pytest.mark.django_db
def test_it_takes_a_snapshot_from_the_page(staff_client):
    response = staff_client.post(URL + "snapshot/")
    assert response.status_code == 302 and response["Location"] == URL
    assert HealthSnapshot.objects.count() == 1


def test_it_escapes_every_text_in_charts():
    moment = timezone.now()
    points = [(moment, 1), (moment + timedelta(hours=1), 5)]
    line = line_chart([Series('<b>"x"</b>', points)], title="<script>t</script>")
    assert line.startswith("<svg") and line.endswith("</svg>")
    assert "<script>" not in line and "<b>" not in line
    assert "&lt;script&gt;" in line and "&lt;b&gt;" in line
    assert "No data yet." in line_chart([], title="empty")


@pytest.mark.django_db
def test_it_schedules_the_snapshot_daily():
    spec = next(s for s in SCHEDULES if s.func == "ops.dbhealth.tasks.health_snapshot")
    call_command("setup_schedules")
    schedule = Schedule.objects.get(name=spec.name)
    assert (schedule.schedule_type, schedule.minutes) == (Schedule.MINUTES, 1440)
