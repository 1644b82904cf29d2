"""The Status page: migrations, q2 clusters and schedules, bot shards and sweeps, plainly."""

from __future__ import annotations

from datetime import timedelta

import pytest
from django.contrib.auth.models import User
from django.db.migrations.recorder import MigrationRecorder
from django.utils import timezone
from django_q.brokers import Broker
from django_q.conf import Conf
from django_q.models import OrmQ, Schedule, Task
from django_q.signing import SignedPackage
from django_q.status import Stat, Status

from ops.models import ShardHeartbeat, SweepRun
from ops.status import selectors

URL = "/admin/ops/status/"


@pytest.fixture
def staff_client(client, db):
    client.force_login(User.objects.create_user("ops", password="pw-ops-12345", is_staff=True))
    return client


def cluster_report(cluster_id: str = "guildhall-test-cluster") -> None:
    """What a running qcluster writes to the cache every few seconds."""
    Broker().set_stat(Stat.get_key(cluster_id), SignedPackage.dumps(Status(pid=4242, cluster_id=cluster_id), True), 30)


def heartbeat(shard_id: int = 0, *, age: float = 5, hostname: str = "bot-host") -> ShardHeartbeat:
    return ShardHeartbeat.objects.create(
        shard_id=shard_id,
        shard_count=2,
        latency_ms=42.5,
        guild_count=17,
        hostname=hostname,
        pid=999,
        last_seen=timezone.now() - timedelta(seconds=age),
    )


def forget_latest_migration() -> str:
    row = MigrationRecorder.Migration.objects.filter(app="ops").order_by("-applied", "-id").first()
    row.delete()
    return f"{row.app}.{row.name}"


@pytest.mark.django_db
def test_it_says_plainly_that_nothing_is_running(staff_client, settings):
    settings.DISCORD_TOKEN = "token"
    response = staff_client.get(URL)
    assert response.status_code == 200
    page = response.content.decode()
    assert "Worker not running" in page
    assert "Bot not running" in page and "no shard has ever sent a heartbeat" in page
    assert "No sweep has run yet" in page
    assert "0 pending" in page
    assert "guildhall.timers.sweep" in page and "not registered" in page


@pytest.mark.django_db
def test_it_says_the_bot_is_skipped_without_a_token(staff_client, settings):
    settings.DISCORD_TOKEN = ""
    page = staff_client.get(URL).content.decode()
    assert "Bot not running" in page and "DISCORD_TOKEN is not set" in page


@pytest.mark.django_db
def test_it_shows_what_is_running(staff_client, settings):
    settings.DISCORD_TOKEN = "token"
    cluster_report()
    heartbeat(0)
    heartbeat(1, age=600, hostname="old-host")
    now = timezone.now()
    for minutes, p50 in ((3, 120.0), (2, 340.0), (1, 90.0)):
        start = now - timedelta(minutes=minutes)
        SweepRun.objects.create(
            worker="w1",
            started_at=start,
            finished_at=start + timedelta(seconds=55),
            expired=2,
            latency_p50_ms=p50,
            latency_max_ms=p50 * 2,
        )
    schedule = Schedule.objects.create(
        name="guildhall.timers.sweep",
        func="bots.tasks.sweep_timers",
        schedule_type=Schedule.MINUTES,
        minutes=1,
        next_run=now + timedelta(minutes=1),
    )
    for index, ok in enumerate((True, False, False)):
        Task.objects.create(
            id=f"task{index}",
            name=f"t{index}",
            func=schedule.func,
            group=schedule.name,
            started=now - timedelta(minutes=5 - index),
            stopped=now - timedelta(minutes=4 - index),
            success=ok,
        )
    schedule.task = "task2"
    schedule.save()
    OrmQ.objects.create(key=Conf.CLUSTER_NAME, payload="waiting", lock=now - timedelta(seconds=1))
    OrmQ.objects.create(key=Conf.CLUSTER_NAME, payload="taken", lock=now + timedelta(seconds=100))

    page = staff_client.get(URL).content.decode()
    assert "guildhall-test-cluster" in page and "Worker not running" not in page
    assert "bot-host" in page and "Bot not running" not in page
    assert "old-host" in page and "not running" in page  # the stale shard
    assert "<polyline" in page and "Sweep latency" in page
    assert "Queue: 1 waiting, 1 being worked on" in page
    state = next(s for s in selectors.schedules_state() if s.name == "guildhall.timers.sweep")
    assert (state.failures, state.last_ok, state.registered) == (2, False, True)
    assert state.last_run == Task.objects.get(id="task2").stopped


@pytest.mark.django_db
def test_it_lists_pending_migrations(staff_client):
    assert selectors.migrations_state().pending == [] and selectors.migrations_pending() == []
    name = forget_latest_migration()
    assert selectors.migrations_state().pending == [name]
    assert selectors.migrations_pending() == [name]
    page = staff_client.get(URL).content.decode()
    assert "1 pending" in page and name in page


@pytest.mark.django_db
def test_it_sends_anonymous_users_to_the_login_page(client):
    response = client.get(URL)
    assert response.status_code == 302
    assert response["Location"].startswith("/admin/login/")


@pytest.mark.django_db
def test_it_links_the_operations_pages_from_the_admin_index(staff_client):
    page = staff_client.get("/admin/").content.decode()
    assert "Operations" in page
    for path in ("/admin/ops/database/", "/admin/ops/status/", "/admin/ops/backups/"):
        assert f'href="{path}"' in page
