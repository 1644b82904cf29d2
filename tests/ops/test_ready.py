"""/health/ready: health+json, pass/warn/fail from real conditions, 503 on fail, no login."""

from __future__ import annotations

from datetime import timedelta

import pytest
from django.db.migrations.recorder import MigrationRecorder
from django.utils import timezone

from ops.models import ShardHeartbeat
from tests.ops.test_status import cluster_report, forget_latest_migration

URL = "/health/ready"


@pytest.fixture
def healthy(db, settings):
    """A running worker, no bot configured and a disk threshold every disk meets."""
    settings.DISCORD_TOKEN = ""
    settings.HEALTH_DISK_WARN_PERCENT = 0
    settings.HEALTH_DISK_FAIL_PERCENT = 0
    cluster_report()
    return settings


def _get(client):
    response = client.get(URL)
    assert response["Content-Type"] == "application/health+json"
    return response, response.json()


def test_it_passes_when_everything_is_up(client, healthy):
    response, body = _get(client)
    assert response.status_code == 200
    assert body["status"] == "pass"
    assert set(body["checks"]) == {
        "database:responseTime",
        "cache:responseTime",
        "q2:clusters",
        "migrations:pending",
        "disk:free",
    }
    for name, (entry,) in body["checks"].items():
        assert entry["status"] == "pass", (name, entry)
        assert {"observedValue", "observedUnit", "time"} <= set(entry)
    assert body["checks"]["q2:clusters"][0]["observedValue"] == 1
    assert "no-cache" in response["Cache-Control"] or "max-age=0" in response["Cache-Control"]


def test_it_warns_without_a_worker(client, healthy):
    from django.core.cache import cache

    cache.clear()
    response, body = _get(client)
    assert response.status_code == 200
    assert body["status"] == "warn"
    assert body["checks"]["q2:clusters"][0]["status"] == "warn"
    assert "not running" in body["checks"]["q2:clusters"][0]["output"]


def test_it_warns_then_fails_on_free_disk(client, healthy):
    healthy.HEALTH_DISK_WARN_PERCENT = 100
    response, body = _get(client)
    assert (response.status_code, body["status"], body["checks"]["disk:free"][0]["status"]) == (200, "warn", "warn")
    assert body["checks"]["disk:free"][0]["observedUnit"] == "percent"
    healthy.HEALTH_DISK_FAIL_PERCENT = 100
    response, body = _get(client)
    assert (response.status_code, body["status"], body["checks"]["disk:free"][0]["status"]) == (503, "fail", "fail")


def test_it_fails_with_pending_migrations(client, healthy):
    forget_latest_migration()
    response, body = _get(client)
    assert response.status_code == 503
    assert body["status"] == "fail"
    entry = body["checks"]["migrations:pending"][0]
    assert (entry["status"], entry["observedValue"]) == ("fail", 1)
    assert MigrationRecorder.Migration.objects.exists()


def test_it_checks_the_bot_only_when_a_token_is_set(client, healthy):
    _, body = _get(client)
    assert "bot:heartbeatAge" not in body["checks"]
    healthy.DISCORD_TOKEN = "token"
    _, body = _get(client)
    assert body["status"] == "warn" and body["checks"]["bot:heartbeatAge"][0]["status"] == "warn"
    beat = ShardHeartbeat.objects.create(shard_id=0, last_seen=timezone.now() - timedelta(seconds=5))
    _, body = _get(client)
    assert body["status"] == "pass" and body["checks"]["bot:heartbeatAge"][0]["status"] == "pass"
    beat.last_seen = timezone.now() - timedelta(minutes=5)
    beat.save()
    _, body = _get(client)
    assert body["checks"]["bot:heartbeatAge"][0]["status"] == "warn"
    assert "not running" in body["checks"]["bot:heartbeatAge"][0]["output"]


def test_it_warns_when_one_shard_of_several_is_silent_or_never_reported(client, healthy):
    healthy.DISCORD_TOKEN = "token"
    now = timezone.now()
    ShardHeartbeat.objects.create(shard_id=0, shard_count=3, last_seen=now - timedelta(seconds=3))
    ShardHeartbeat.objects.create(shard_id=1, shard_count=3, last_seen=now - timedelta(minutes=10))
    _, body = _get(client)
    reading = body["checks"]["bot:heartbeatAge"][0]
    assert body["status"] == "warn" and reading["status"] == "warn"
    assert reading["output"] == "shards 1, 2 of 3 not running: their guilds go unanswered"
    ShardHeartbeat.objects.filter(shard_id=1).update(last_seen=now)
    _, body = _get(client)
    assert body["checks"]["bot:heartbeatAge"][0]["output"] == "shard 2 of 3 not running: its guilds go unanswered"
    ShardHeartbeat.objects.create(shard_id=2, shard_count=3, last_seen=now)
    _, body = _get(client)
    assert body["checks"]["bot:heartbeatAge"][0]["status"] == "pass"


def test_it_answers_without_login_and_only_to_get(client, healthy):
    assert client.get(URL).status_code == 200
    assert client.post(URL).status_code == 405
