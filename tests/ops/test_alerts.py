"""Alerts end to end: each condition made true for real, posted to the fake Discord's webhook and to the
mail outbox once when it starts and once when it clears, silent while it holds, no flapping inside
the hold times, one post when two evaluators race; the Status page and /health/ready list them."""

from __future__ import annotations

import os
import shutil
import socket
import subprocess
import tempfile
import threading
import time
from datetime import timedelta
from multiprocessing import Queue, Value
from pathlib import Path

import psycopg
import pytest
from django.contrib.auth.models import User
from django.core import mail
from django.db import connections
from django.db.migrations.recorder import MigrationRecorder
from django.utils import timezone
from django_q.brokers import get_broker
from django_q.models import Failure
from django_q.monitor import monitor
from django_q.signing import SignedPackage
from django_q.tasks import async_task
from django_q.worker import worker

from ops.alerts.conditions import CONDITIONS, Condition, archive_verdict, shard_silent
from ops.alerts.readings import archiver_read
from ops.alerts.services import alerts_evaluate
from ops.backups.drill import drill_scheduled
from ops.backups.errors import BackupFailed
from ops.backups.services import backup_create
from ops.models import AlertState, DrillResult, ShardHeartbeat, SweepRun
from tests.fake_discord import FakeDiscord
from tests.fake_discord.routes_webhooks import webhook_create, webhook_posts

STATUS_URL = "/admin/ops/status/"
PG_BIN = Path("/usr/lib/postgresql/15/bin")
AS_OWNER = ["runuser", "-u", "postgres", "--"] if os.geteuid() == 0 else []  # initdb refuses root


def q2_run(func: str, *args) -> None:
    """One task through django-q2's own queue, worker and monitor (what a cluster does with it), in this process."""
    broker = get_broker()
    async_task(func, *args, broker=broker)
    ((ack_id, pack),) = broker.dequeue()
    task = SignedPackage.loads(pack)
    task["ack_id"] = ack_id
    tasks, results = Queue(), Queue()
    tasks.put(task)
    tasks.put("STOP")
    worker(tasks, results, Value("f", -1))
    results.put("STOP")
    monitor(results, broker)


def only(*names: str) -> list[Condition]:
    return [condition for condition in CONDITIONS if condition.name in names]


@pytest.fixture
def fake():
    with FakeDiscord() as running:
        yield running


@pytest.fixture
def alerting(settings, fake, backup_dir):
    """Alerts to the fake's webhook and to a mail address, with no hold times (the hold tests set their own)."""
    settings.ALERT_DISCORD_WEBHOOK_URL = webhook_create(fake)
    settings.ALERT_EMAIL_TO = ["ops@example.org"]
    settings.ALERT_FIRE_AFTER_SECONDS = 0
    settings.ALERT_CLEAR_AFTER_SECONDS = 0
    return fake


def posts(fake) -> list[str]:
    return [post["content"] for post in webhook_posts(fake)]


def subjects() -> list[str]:
    return [message.subject for message in mail.outbox]


def evaluate(*names: str, now=None):
    return alerts_evaluate(now=now or timezone.now(), conditions=only(*names))


@pytest.mark.django_db(transaction=True)
def test_it_posts_a_missing_backup_once_and_its_clearing_once(alerting):
    evaluate("backup_stale")
    assert posts(alerting) == [
        "**FIRING: Backup missing or old**\nThere is no backup at all.\n\nAlert backup_stale, firing "
        f"since {AlertState.objects.get().firing_since:%Y-%m-%d %H:%M:%S} UTC. One more notice follows "
        "when it clears."
    ]
    assert subjects() == ["[Guildhall] FIRING: Backup missing or old"] and mail.outbox[0].to == ["ops@example.org"]
    for _ in range(3):  # it stays: nothing more is posted
        assert evaluate("backup_stale") == []
    assert len(posts(alerting)) == 1 and len(mail.outbox) == 1
    assert webhook_posts(alerting)[0]["allowed_mentions"] == {"parse": []}

    backup_create(kind="manual")
    (transition,) = evaluate("backup_stale")
    assert transition.kind == "cleared" and transition.undelivered == []
    assert posts(alerting)[1].startswith("**CLEARED: Backup missing or old**\nAlert backup_stale cleared at")
    assert subjects()[1] == "[Guildhall] CLEARED: Backup missing or old"
    evaluate("backup_stale")
    assert len(posts(alerting)) == 2 and len(mail.outbox) == 2
    state = AlertState.objects.get(name="backup_stale")
    assert state.firing_since is None and state.cleared_at is not None and state.last_seen is not None


@pytest.mark.django_db(transaction=True)
def test_it_fires_when_the_newest_backup_is_over_26_hours_old(alerting):
    backup_create(kind="manual")
    assert evaluate("backup_stale") == []  # fresh
    (transition,) = evaluate("backup_stale", now=timezone.now() + timedelta(hours=27))
    assert transition.kind == "firing" and "is 27.0 h old (limit 26 h)" in transition.detail
    assert "is 27.0 h old" in posts(alerting)[0]


@pytest.mark.django_db(transaction=True)
def test_it_fires_on_a_failed_drill_of_a_corrupt_backup_and_clears_on_a_good_one(alerting):
    corrupt = backup_create(kind="manual")
    data = bytearray(corrupt.path.read_bytes())
    data[len(data) // 2] ^= 0xFF
    corrupt.path.write_bytes(bytes(data))
    with pytest.raises(BackupFailed, match="restore drill failed"):
        drill_scheduled()
    result = DrillResult.objects.get()
    assert not result.passed and "does not match its checksum" in result.error and result.backup == corrupt.name
    (transition,) = evaluate("drill_failed")
    assert transition.kind == "firing" and corrupt.name in posts(alerting)[0]
    assert subjects() == ["[Guildhall] FIRING: Restore drill failed"]

    corrupt.path.unlink()
    backup_create(kind="scheduled")
    assert "passed" in drill_scheduled(force=True)  # the next one, without waiting the 30 days
    (transition,) = evaluate("drill_failed")
    assert transition.kind == "cleared" and len(posts(alerting)) == 2


@pytest.mark.django_db(transaction=True)
def test_it_fires_on_a_failed_scheduled_backup(alerting, settings):
    settings.BACKUP_DIR = Path("/proc/guildhall-cannot-write-here")
    q2_run("ops.backups.tasks.backup_scheduled")
    assert Failure.objects.filter(func="ops.backups.tasks.backup_scheduled").exists()
    (transition,) = evaluate("backup_failed")
    assert transition.kind == "firing" and "The scheduled backup failed" in posts(alerting)[0]


@pytest.mark.django_db
def test_it_fires_when_the_disk_is_under_the_threshold(alerting, settings):
    settings.ALERT_DISK_FREE_PERCENT = 100.0  # every real disk has less than all of it free
    (transition,) = evaluate("disk_low")
    assert transition.kind == "firing" and "% free (limit 100%)" in posts(alerting)[0]
    settings.ALERT_DISK_FREE_PERCENT = 0.0
    (transition,) = evaluate("disk_low")
    assert transition.kind == "cleared"


@pytest.mark.django_db
def test_it_fires_on_a_shard_without_heartbeat_for_two_minutes(alerting):
    beat = ShardHeartbeat.objects.create(shard_id=3, last_seen=timezone.now() - timedelta(seconds=90))
    assert evaluate("shard_silent") == []  # 90 s: still within the 2 minutes
    ShardHeartbeat.objects.filter(pk=beat.pk).update(last_seen=timezone.now() - timedelta(seconds=150))
    (transition,) = evaluate("shard_silent")
    assert "shard 3 (150 s)" in transition.detail and "shard 3" in posts(alerting)[0]
    ShardHeartbeat.objects.filter(pk=beat.pk).update(last_seen=timezone.now())
    assert [t.kind for t in evaluate("shard_silent")] == ["cleared"]


@pytest.mark.django_db(transaction=True)
def test_it_fires_on_a_failed_worker_task_in_the_last_hour(alerting):
    q2_run("math.sqrt", -1)  # ValueError: a real failed q2 task
    assert Failure.objects.count() == 1
    (transition,) = evaluate("tasks_failed")
    assert "1 worker task(s) failed in the last hour" in posts(alerting)[0]
    (transition,) = evaluate("tasks_failed", now=timezone.now() + timedelta(hours=1, minutes=1))
    assert transition.kind == "cleared"


@pytest.mark.django_db
def test_it_fires_on_slow_sweeps(alerting):
    now = timezone.now()
    for index, worst in enumerate((900.0, 1200.0, 8000.0)):
        start = now - timedelta(minutes=10 - index)
        SweepRun.objects.create(worker="w", started_at=start, finished_at=start, latency_p50_ms=100, latency_max_ms=worst)
    (transition,) = evaluate("sweep_slow")
    assert "p99 8.0 s" in transition.detail and len(posts(alerting)) == 1


@pytest.mark.django_db
def test_it_fires_when_health_ready_fails_and_lists_itself_there(alerting, client):
    row = MigrationRecorder.Migration.objects.filter(app="ops").order_by("-applied", "-id").first()
    row.delete()  # a pending migration makes /health/ready fail
    (transition,) = evaluate("ready_failing")
    assert "migrations:pending" in transition.detail and "/health/ready fails" in posts(alerting)[0]
    body = client.get("/health/ready").json()
    entry = body["checks"]["alerts:firing"][0]
    assert entry["status"] == "warn" and entry["output"] == "firing: ready_failing"
    MigrationRecorder.Migration.objects.create(app=row.app, name=row.name)
    assert [t.kind for t in evaluate("ready_failing")] == ["cleared"]
    assert "alerts:firing" not in client.get("/health/ready").json()["checks"]


@pytest.mark.django_db
def test_it_holds_before_firing_and_before_clearing_so_it_never_flaps(alerting, settings):
    settings.ALERT_FIRE_AFTER_SECONDS, settings.ALERT_CLEAR_AFTER_SECONDS = 120, 300
    beat = ShardHeartbeat.objects.create(shard_id=0, last_seen=timezone.now())
    start = timezone.now()

    def at(minutes: int, *, silent: bool) -> list[str]:
        now = start + timedelta(minutes=minutes)
        ShardHeartbeat.objects.filter(pk=beat.pk).update(last_seen=now - timedelta(seconds=600 if silent else 5))
        return [t.kind for t in evaluate("shard_silent", now=now)]

    assert at(0, silent=True) == []  # pending
    assert at(1, silent=False) == []  # gone before the hold time: forgotten, never posted
    assert at(2, silent=True) == [] and at(3, silent=True) == []
    assert at(4, silent=True) == ["firing"]  # held 2 minutes
    assert at(5, silent=False) == [] and at(6, silent=True) == []  # back within the clear hold: still firing, silent
    assert [at(m, silent=False) for m in range(7, 12)] == [[], [], [], [], []]
    assert at(12, silent=False) == ["cleared"]  # absent 5 minutes
    assert len(posts(alerting)) == 2 and len(mail.outbox) == 2


@pytest.mark.django_db(transaction=True)
def test_two_evaluators_racing_post_each_start_and_clear_once(alerting):
    barrier = threading.Barrier(2, timeout=10)

    def claim_together(execute, sql, params, many, context):
        # Both evaluators have read the alert's state and now send their claim of the same transition
        # at once (the UPDATE that sets firing_since), which is the moment a double post would happen.
        if sql.startswith('UPDATE "ops_alertstate" SET "firing_since"'):
            try:
                barrier.wait()
            except threading.BrokenBarrierError:
                pass
        return execute(sql, params, many, context)

    beat = ShardHeartbeat.objects.create(shard_id=0, last_seen=timezone.now())
    won: list[str] = []

    def evaluator(now):
        try:
            with connections["default"].execute_wrapper(claim_together):
                won.extend(t.kind for t in evaluate("shard_silent", now=now))
        finally:
            connections.close_all()

    for round_ in range(4):
        silent = round_ % 2 == 0
        ShardHeartbeat.objects.filter(pk=beat.pk).update(last_seen=timezone.now() - timedelta(seconds=600 if silent else 0))
        now = timezone.now()
        barrier.reset()
        threads = [threading.Thread(target=evaluator, args=(now,)) for _ in range(2)]
        for thread in threads:
            thread.start()
        for thread in threads:
            thread.join(30)
        assert not barrier.broken, "the two evaluators did not both reach the claim"
    assert won == ["firing", "cleared", "firing", "cleared"]
    assert len(posts(alerting)) == 4 and len(mail.outbox) == 4


@pytest.mark.django_db
def test_it_sends_a_notice_again_when_the_webhook_failed(alerting, settings):
    settings.ALERT_DISK_FREE_PERCENT = 100.0
    alerting.fail_next("POST", r"/webhooks/.*", 400)
    (transition,) = evaluate("disk_low")
    assert transition.undelivered == ["discord"] and posts(alerting) == [] and len(mail.outbox) == 1
    started = AlertState.objects.get().firing_since
    evaluate("disk_low", now=timezone.now() + timedelta(minutes=1))  # delivered now, only on the channel that failed
    assert len(posts(alerting)) == 1 and posts(alerting)[0].startswith("**FIRING: Disk nearly full**")
    assert f"firing since {started:%Y-%m-%d %H:%M:%S} UTC" in posts(alerting)[0]  # as of when it started
    assert len(mail.outbox) == 1 and AlertState.objects.get().notice == ""


@pytest.mark.django_db(transaction=True)
def test_the_status_page_lists_firing_alerts_and_drill_results(alerting, client, settings):
    settings.ALERT_DISK_FREE_PERCENT = 100.0
    evaluate("disk_low")
    backup_create(kind="manual")
    drill_scheduled()
    client.force_login(User.objects.create_user("ops", password="pw-ops-12345", is_staff=True))
    page = client.get(STATUS_URL).content.decode()
    assert "Disk nearly full" in page and "<code>disk_low</code>" in page and "firing" in page
    assert "Restore drills" in page and "passed" in page and DrillResult.objects.get().backup in page


@pytest.mark.django_db
def test_the_status_page_is_refused_to_a_user_who_is_not_staff(client):
    client.force_login(User.objects.create_user("member", password="pw-member-12345", is_staff=False))
    response = client.get(STATUS_URL)
    assert response.status_code == 302 and response["Location"].startswith("/admin/login/")


# --- WAL archiving, on a scratch PostgreSQL cluster of this test's own ------------------------


def _free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return probe.getsockname()[1]


@pytest.fixture
def broken_archive_cluster():
    """A scratch cluster whose archive_command always fails (the shared cluster is never reconfigured)."""
    base = Path(tempfile.mkdtemp(prefix="gh-alerts-archive-"))
    if AS_OWNER:
        shutil.chown(base, "postgres")
    port, datadir = _free_port(), base / "data"
    run = lambda *argv: subprocess.run([*AS_OWNER, *argv], check=True, capture_output=True, timeout=120)  # noqa: E731
    try:
        run(str(PG_BIN / "initdb"), "-D", str(datadir), "-A", "trust", "-U", "postgres", "--no-sync")
        # In postgresql.conf, not on the command line, so that ALTER SYSTEM can mend archive_command later.
        with open(datadir / "postgresql.conf", "a") as conf:
            conf.write("wal_level = replica\narchive_mode = on\narchive_command = 'false'\n")
        options = f"-p {port} -k {base} -c listen_addresses=127.0.0.1 -c fsync=off"
        run(str(PG_BIN / "pg_ctl"), "start", "-D", str(datadir), "-w", "-l", str(base / "log"), "-o", options)
        yield port
    finally:
        if (datadir / "postmaster.pid").exists():
            subprocess.run([*AS_OWNER, str(PG_BIN / "pg_ctl"), "stop", "-D", str(datadir), "-m", "immediate", "-w"], check=False)
        shutil.rmtree(base, ignore_errors=True)


def _scratch_sql(port: int, query: str):
    with psycopg.connect(host="127.0.0.1", port=port, user="postgres", dbname="postgres", autocommit=True) as conn:
        cursor = conn.execute(query)
        return cursor.fetchall() if cursor.description else []


def _wait(port: int, query: str, what: str, timeout: float = 60) -> None:
    deadline = time.monotonic() + timeout
    while not _scratch_sql(port, query)[0][0]:
        assert time.monotonic() < deadline, f"timed out waiting for {what}"
        time.sleep(0.2)


@pytest.mark.postgres
@pytest.mark.django_db
def test_it_fires_when_wal_archiving_fails_and_clears_once_it_archives_again(alerting, broken_archive_cluster):
    port = broken_archive_cluster

    def scratch_archiver(now):  # the condition's verdict on the scratch cluster's pg_stat_archiver
        with psycopg.connect(host="127.0.0.1", port=port, user="postgres", dbname="postgres") as conn, conn.cursor() as cur:
            return archive_verdict(archiver_read(cur))

    archiving = [Condition("wal_archive_stalled", "WAL archiving stalled", scratch_archiver)]
    assert scratch_archiver(None) == (False, "Last archived nothing yet.")
    assert alerts_evaluate(conditions=archiving) == []
    _scratch_sql(port, "CREATE TABLE filler AS SELECT generate_series(1, 1000) AS n")
    _scratch_sql(port, "SELECT pg_switch_wal()")
    _wait(port, "SELECT failed_count > 0 FROM pg_stat_archiver", "the broken archive_command to fail")
    (transition,) = alerts_evaluate(conditions=archiving)
    assert transition.kind == "firing" and "WAL archiving is failing" in posts(alerting)[0]
    assert alerts_evaluate(conditions=archiving) == []  # still failing: silent

    _scratch_sql(port, "ALTER SYSTEM SET archive_command = 'true'")
    _scratch_sql(port, "SELECT pg_reload_conf()")
    _wait(port, "SELECT last_archived_time > last_failed_time FROM pg_stat_archiver", "the segment to be archived")
    (transition,) = alerts_evaluate(conditions=archiving)
    assert transition.kind == "cleared" and len(posts(alerting)) == 2 and len(mail.outbox) == 2


def test_every_series_the_prometheus_rules_read_is_exported():
    import re

    from ops.status.metrics import COLLECTOR
    from ops.status.metrics_alerts import ALERTS_COLLECTOR

    rules = (Path(__file__).resolve().parents[2] / "deploy" / "prometheus" / "alerts.yml").read_text()
    read = set(re.findall(r"\bguildhall_[a-z0-9_]+", rules))
    exported = {family.name for collector in (COLLECTOR, ALERTS_COLLECTOR) for family in collector.describe()}
    assert read and read <= exported, read - exported


@pytest.mark.postgres
@pytest.mark.django_db(transaction=True)
def test_it_fires_while_requests_wait_for_a_pooled_connection(alerting, settings):
    from django.db import connection

    settings.ALERT_POOL_WAIT_MS = 60_000  # the waiting request itself is what fires it here
    connection.ensure_connection()
    pool = connection.pool
    holding, release, threads = threading.Semaphore(0), threading.Event(), []

    def hold():  # a request that keeps its connection
        try:
            connections["default"].ensure_connection()
            holding.release()
            release.wait(30)
        finally:
            connections.close_all()

    def wait_for_one():  # a request that finds the pool empty
        try:
            connections["default"].ensure_connection()
        finally:
            connections.close_all()

    try:
        stats = pool.get_stats()
        for _ in range(pool.max_size - stats["pool_size"] + stats["pool_available"]):  # every free slot taken
            threads.append(threading.Thread(target=hold))
            threads[-1].start()
            assert holding.acquire(timeout=30)
        threads.append(threading.Thread(target=wait_for_one))
        threads[-1].start()
        deadline = time.monotonic() + 10
        while pool.get_stats().get("requests_waiting", 0) < 1:
            assert time.monotonic() < deadline, pool.get_stats()
            time.sleep(0.01)
        (transition,) = evaluate("pool_waits")
        assert transition.kind == "firing" and "1 requests waiting now" in posts(alerting)[0]
    finally:
        release.set()
        for thread in threads:
            thread.join(30)
    assert [t.kind for t in evaluate("pool_waits")] == ["cleared"]  # nobody waits now


@pytest.mark.postgres
def test_it_fires_when_a_streaming_replica_lags_and_clears_when_it_catches_up(alerting, settings, tmp_path):
    """A pair of the test's own (deploy/replica.sh); the evaluator runs as a product process on it."""
    import json
    import sys

    root = Path(__file__).resolve().parents[2]
    directory = tempfile.mkdtemp(prefix="gh-alerts-replica-")
    os.chmod(directory, 0o755)
    primary, replica = _free_port(), _free_port()
    script = [str(root / "deploy" / "replica.sh")]
    sql = lambda port, query: _scratch_sql(port, query)  # noqa: E731
    env = {k: v for k, v in os.environ.items() if k not in ("DATABASE_URL", "DATABASE_REPLICA_URL", "REDIS_URL")}
    env.update(
        DATABASE_URL=f"postgres://postgres@127.0.0.1:{primary}/guildhall",
        DATABASE_REPLICA_URL=f"postgres://postgres@127.0.0.1:{replica}/guildhall",
        GUILDHALL_DATA_DIR=str(tmp_path),
        ALERT_DISCORD_WEBHOOK_URL=settings.ALERT_DISCORD_WEBHOOK_URL,
        ALERT_FIRE_AFTER_SECONDS="0",
        ALERT_CLEAR_AFTER_SECONDS="0",
        ALERT_REPLICA_LAG_SECONDS="2",
    )
    evaluate_there = (
        "import json\nfrom ops.alerts.conditions import CONDITIONS\nfrom ops.alerts.services import alerts_evaluate\n"
        "print('OUT ' + json.dumps([[t.kind, t.detail] for t in alerts_evaluate("
        "conditions=[c for c in CONDITIONS if c.name == 'replica_lag'])]))"
    )

    def evaluate_on_pair() -> list:
        done = subprocess.run(
            [sys.executable, "manage.py", "shell", "-c", evaluate_there],
            cwd=root,
            env=env,
            capture_output=True,
            text=True,
            timeout=120,
        )
        assert done.returncode == 0, done.stderr
        return json.loads(next(line for line in done.stdout.splitlines() if line.startswith("OUT "))[4:])

    try:
        made = subprocess.run(
            [*script, "pair", "--dir", directory, "--primary-port", str(primary), "--replica-port", str(replica)]
            + ["--database", "guildhall", "--set", "fsync=off"],
            capture_output=True,
            text=True,
            timeout=180,
        )
        assert made.returncode == 0, made.stdout + made.stderr
        migrated = subprocess.run(
            [sys.executable, "manage.py", "migrate", "ops", "-v0"], cwd=root, env=env, capture_output=True, text=True, timeout=300
        )
        assert migrated.returncode == 0, migrated.stderr
        assert evaluate_on_pair() == []  # streaming, caught up
        sql(replica, "SELECT pg_wal_replay_pause()")
        sql(primary, "CREATE TABLE written_while_paused AS SELECT generate_series(1, 100) AS n")
        time.sleep(3)
        ((kind, detail),) = evaluate_on_pair()
        assert kind == "firing" and "Replica lag" in detail and "(limit 2 s)" in detail
        assert "Replica lagging" in posts(alerting)[0]
        sql(replica, "SELECT pg_wal_replay_resume()")
        deadline = time.monotonic() + 30
        while not sql(replica, "SELECT pg_last_wal_receive_lsn() = pg_last_wal_replay_lsn()")[0][0]:
            assert time.monotonic() < deadline, "the replica did not catch up"
            time.sleep(0.1)
        ((kind, _),) = evaluate_on_pair()
        assert kind == "cleared" and len(posts(alerting)) == 2
    finally:
        subprocess.run([*script, "stop", "--dir", directory], capture_output=True, timeout=90)
        shutil.rmtree(directory, ignore_errors=True)


@pytest.mark.django_db
def test_the_status_reads_have_their_indexes():
    from django.db import connection

    with connection.cursor() as cursor:
        alerts = connection.introspection.get_constraints(cursor, AlertState._meta.db_table)
        drills = connection.introspection.get_constraints(cursor, DrillResult._meta.db_table)
    assert alerts["alert_state_firing"]["index"] and alerts["alert_state_firing"]["columns"] == ["name"]
    assert drills["drill_result_recent"]["index"] and drills["drill_result_recent"]["columns"] == ["started_at"]
