"""Point-in-time recovery on PostgreSQL with pgBackRest, drilled on scratch clusters of the test's own.

A primary cluster is made with initdb on a free port in a temporary directory, configured by
deploy/pitr/pgbackrest.sh and migrated by Guildhall; the product's commands run against it
as subprocesses (DATABASE_URL names it), the way an operator runs them. The shared cluster is
never touched. Every cluster started here is stopped when the module ends.
"""

from __future__ import annotations

import io
import json
import os
import shutil
import socket
import subprocess
import sys
import tempfile
import time
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from pathlib import Path

import psycopg
import pytest
from django.conf import settings as django_settings
from django.contrib.auth.models import User
from django.core.management import CommandError, call_command
from django.urls import reverse
from django_q.models import Schedule

from ops.pitr import pgbackrest
from ops.pitr.tasks import pitr_backup_kind, pitr_backup_scheduled
from ops.schedules import PITR_BACKUP_SCHEDULE

# All marked django_db, so that pytest-django's ordering keeps them together and the primary is made once.
pytestmark = [pytest.mark.postgres, pytest.mark.django_db]

REPO_ROOT = Path(__file__).resolve().parents[2]
SCRIPT = REPO_ROOT / "deploy" / "pitr" / "pgbackrest.sh"
PG_BIN = Path("/usr/lib/postgresql/15/bin")
GUILD = 4242
# initdb refuses root; as root the clusters belong to the postgres OS user (Debian's package makes it).
AS_OWNER = ["runuser", "-u", "postgres", "--"] if os.geteuid() == 0 else []


def _free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return probe.getsockname()[1]


def _run(argv: list[str], *, env: dict | None = None, check: bool = True, timeout: float = 120) -> subprocess.CompletedProcess:
    done = subprocess.run(argv, capture_output=True, text=True, env=env, timeout=timeout, check=False, cwd=REPO_ROOT)
    if check and done.returncode != 0:
        raise AssertionError(f"{argv} exited {done.returncode}:\n{done.stdout}\n{done.stderr}")
    return done


@dataclass
class Cluster:
    base: Path
    port: int
    stanza: str

    @property
    def datadir(self) -> Path:
        return self.base / "data"

    @property
    def config(self) -> Path:
        return self.base / "pgbackrest.conf"

    def env(self, **extra: str) -> dict:
        env = {
            **os.environ,
            "DATABASE_URL": f"postgres://postgres@127.0.0.1:{self.port}/guildhall",
            "PITR_PGBACKREST_STANZA": self.stanza,
            "PITR_PGBACKREST_CONFIG": str(self.config),
        }
        return {**env, **extra}

    def manage(self, *args: str, check: bool = True, timeout: float = 120) -> subprocess.CompletedProcess:
        return _run([sys.executable, "manage.py", *args], env=self.env(), check=check, timeout=timeout)

    def sql(self, query: str, *, dbname: str = "postgres", port: int | None = None):
        with psycopg.connect(host="127.0.0.1", port=port or self.port, user="postgres", dbname=dbname, autocommit=True) as conn:
            cursor = conn.execute(query)
            return cursor.fetchall() if cursor.description else []


def _new_cluster(stanza: str, *script_args: str) -> Cluster:
    if shutil.which("pgbackrest") is None:
        pytest.fail("pgbackrest is not installed (apt-get install -y pgbackrest)")
    base = Path(tempfile.mkdtemp(prefix="gh-pitr-"))
    if AS_OWNER:
        shutil.chown(base, "postgres")
    cluster = Cluster(base=base, port=_free_port(), stanza=stanza)
    _run([*AS_OWNER, str(PG_BIN / "initdb"), "-D", str(cluster.datadir), "-A", "trust", "-U", "postgres", "--no-sync"])
    options = f"-p {cluster.port} -k {base} -c listen_addresses=127.0.0.1 -c fsync=off"
    _run(
        [
            *AS_OWNER,
            str(PG_BIN / "pg_ctl"),
            "start",
            "-D",
            str(cluster.datadir),
            "-w",
            "-l",
            str(base / "first.log"),
            "-o",
            options,
        ]
    )
    done = _run(
        ["bash", str(SCRIPT), "--pgdata", str(cluster.datadir), "--stanza", stanza, "--config", str(cluster.config)]
        + ["--repo-path", str(base / "repo"), "--log-path", str(base / "log"), "--lock-path", str(base / "lock")]
        + ["--archive-timeout", "5", *script_args]
    )
    assert done.stdout.splitlines()[-2:] == [f"PITR_PGBACKREST_STANZA={stanza}", f"PITR_PGBACKREST_CONFIG={cluster.config}"]
    return cluster


def _stop_all(base: Path) -> None:
    """Stop every cluster started under ``base`` (the primary and any restored one), then remove it."""
    for pid_file in base.glob("*/postmaster.pid"):
        subprocess.run(
            [*AS_OWNER, str(PG_BIN / "pg_ctl"), "stop", "-D", str(pid_file.parent), "-m", "immediate", "-w"], check=False
        )
    shutil.rmtree(base, ignore_errors=True)


@pytest.fixture(scope="module")
def primary():
    """A migrated Guildhall database on a pgBackRest-configured cluster, with one full backup."""
    cluster = _new_cluster("drill")
    try:
        cluster.sql("CREATE DATABASE guildhall")
        cluster.manage("migrate", "-v0", timeout=300)
        made = cluster.manage("pitr_backup", "--type", "full")
        assert "full backup" in made.stdout
        yield cluster
    finally:
        _stop_all(cluster.base)


def _archive_now(cluster: Cluster) -> None:
    """Close the current WAL segment and wait until the archiver has pushed it."""
    segment = cluster.sql("SELECT pg_walfile_name(pg_switch_wal())")[0][0]
    deadline = time.monotonic() + 30
    while (cluster.sql("SELECT last_archived_wal FROM pg_stat_archiver")[0][0] or "") < segment:
        assert time.monotonic() < deadline, f"{segment} was not archived within 30 s"
        time.sleep(0.1)


def _set_balances(cluster: Cluster, members: range) -> None:
    code = (
        "from commands.services.cookies import cookie_set\n"
        f"for member in {list(members)}: cookie_set(guild_id={GUILD}, member_id=member, balance=member, actor_id=None)"
    )
    cluster.manage("shell", "-c", code)


def test_it_restores_exactly_the_rows_written_before_the_moment(primary):
    _set_balances(primary, range(1, 6))
    time.sleep(0.3)
    moment = datetime.now(UTC)
    time.sleep(0.3)
    _set_balances(primary, range(6, 11))
    _archive_now(primary)

    port = _free_port()
    into = f"postgres://postgres@127.0.0.1:{port}/guildhall?datadir={primary.base}/restored"
    done = primary.manage("pitr_restore", "--to", moment.strftime("%Y-%m-%d %H:%M:%S.%f"), "--into", into, timeout=300)
    assert "restoring drill to" in done.stdout and "ready: postgres://postgres@127.0.0.1" in done.stdout
    assert "pgbackrest restore: 90% of the files" in done.stdout  # progress, as the files come back

    query = f"SELECT member_id FROM commands_cookiebalance WHERE guild_id = {GUILD} ORDER BY member_id"
    assert [row[0] for row in primary.sql(query, dbname="guildhall", port=port)] == [1, 2, 3, 4, 5]
    ledger = f"SELECT count(*) FROM commands_cookieledger WHERE guild_id = {GUILD}"
    assert primary.sql(ledger, dbname="guildhall", port=port)[0][0] == 5
    assert primary.sql("SELECT pg_is_in_recovery()", port=port)[0][0] is False
    assert primary.sql("SHOW archive_mode", port=port)[0][0] == "off"  # never pushes into the live repository
    # The live database still has all ten.
    assert len(primary.sql(query, dbname="guildhall")) == 10


@pytest.fixture
def configured(primary, settings):
    """This process's settings pointed at the primary's stanza (its commands then run in-process)."""
    settings.PITR_PGBACKREST_STANZA, settings.PITR_PGBACKREST_CONFIG = primary.stanza, str(primary.config)
    return primary


def _call(*args: str) -> str:
    out = io.StringIO()
    call_command(*args, stdout=out)
    return out.getvalue()


def _refusal(*args: str) -> CommandError:
    with pytest.raises(CommandError) as raised:
        call_command(*args, stdout=io.StringIO())
    return raised.value


def test_it_restores_the_latest_moment_of_the_window(configured):
    """What the scheduled PITR drill asks for: no commit follows that moment in the archive yet."""
    _archive_now(configured)
    latest = pgbackrest.window().latest
    assert latest is not None
    port = _free_port()
    shown = _call(
        "pitr_restore",
        "--to",
        latest.isoformat(),
        "--into",
        f"postgres://postgres@127.0.0.1:{port}/guildhall?datadir={configured.base}/latest",
    )
    assert "ready: postgres://" in shown, shown
    query = "SELECT count(*) FROM django_migrations"
    assert configured.sql(query, dbname="guildhall", port=port) == configured.sql(query, dbname="guildhall")


def test_it_prints_the_window_and_takes_differential_backups(configured):
    made = _call("pitr_backup", "--type", "diff")
    assert "diff backup" in made
    shown = _call("pitr_status")
    assert "engine:              pgbackrest" in shown and "archiving: ok" in shown
    info = pgbackrest.backups(pgbackrest_info(configured))
    assert info[0]["type"] == "full" and info[-1]["type"] == "diff" and info[-1]["label"] in made
    for row in info:
        assert row["label"] in shown
    assert f"earliest restorable: {info[0]['stopped_at']:%Y-%m-%d %H:%M:%S} UTC" in shown
    last_wal = configured.sql("SELECT last_archived_wal FROM pg_stat_archiver")[0][0]
    assert f"last archived:       {last_wal} at" in shown


def pgbackrest_info(cluster: Cluster) -> dict:
    done = _run([*AS_OWNER, "pgbackrest", f"--config={cluster.config}", f"--stanza={cluster.stanza}", "info", "--output=json"])
    return json.loads(done.stdout)[0]


def test_it_refuses_a_moment_outside_the_window_and_changes_nothing(configured):
    into = configured.base / "never"
    for moment in ["2001-01-01 00:00:00", (datetime.now(UTC) + timedelta(hours=1)).strftime("%Y-%m-%d %H:%M:%S")]:
        refused = _refusal("pitr_restore", "--to", moment, "--into", str(into))
        assert refused.returncode == 1 and "is outside the recovery window" in str(refused)
        assert not into.exists()


def test_it_refuses_the_live_database(configured):
    moment = datetime.now(UTC).strftime("%Y-%m-%d %H:%M:%S")
    elsewhere = configured.base / "elsewhere"
    by_port = f"postgres://postgres@127.0.0.1:{configured.port}/guildhall?datadir={elsewhere}"
    assert f"port {configured.port} is the live database's" in str(_refusal("pitr_restore", "--to", moment, "--into", by_port))
    # This process's own database (the shared cluster) is live too.
    django_db = f"postgres://127.0.0.1:{django_settings.DATABASES['default'].get('PORT') or 5432}/?datadir={elsewhere}"
    assert "is the live database's" in str(_refusal("pitr_restore", "--to", moment, "--into", django_db))
    by_dir = _refusal("pitr_restore", "--to", moment, "--into", str(configured.datadir))
    assert "is the live cluster's data directory" in str(by_dir)
    assert "--into is postgres://" in str(_refusal("pitr_restore", "--to", moment, "--into", "guildhall-copy"))
    assert not elsewhere.exists() and (configured.datadir / "postmaster.pid").exists()


def test_it_shows_the_window_on_the_backups_page_to_staff_only(primary, settings, client):
    settings.PITR_PGBACKREST_STANZA, settings.PITR_PGBACKREST_CONFIG = primary.stanza, str(primary.config)
    label = pgbackrest.backups(pgbackrest_info(primary))[0]["label"]
    member = User.objects.create_user("member", password="pw-123-long")
    client.force_login(member)
    response = client.get(reverse("backups:index"))
    assert response.status_code == 302 and label not in response.content.decode()

    staff = User.objects.create_user("staff", password="pw-123-long", is_staff=True)
    client.force_login(staff)
    page = client.get(reverse("backups:index")).content.decode()
    assert "Point-in-time recovery (pgBackRest)" in page and label in page
    last_wal = primary.sql("SELECT last_archived_wal FROM pg_stat_archiver")[0][0]
    assert last_wal in page and 'id="recovery-archive-age"' in page
    assert str(primary.base / "repo") not in page  # the repository's path is for superusers


def test_it_schedules_the_backup_job_only_when_configured(primary, settings):
    settings.PITR_PGBACKREST_STANZA, settings.PITR_PGBACKREST_CONFIG = "", ""
    call_command("setup_schedules", stdout=open(os.devnull, "w"))
    assert not Schedule.objects.filter(name=PITR_BACKUP_SCHEDULE).exists()
    settings.PITR_PGBACKREST_STANZA, settings.PITR_PGBACKREST_CONFIG = primary.stanza, str(primary.config)
    call_command("setup_schedules", stdout=open(os.devnull, "w"))
    row = Schedule.objects.get(name=PITR_BACKUP_SCHEDULE)
    assert (row.func, row.minutes) == ("ops.pitr.tasks.pitr_backup_scheduled", 24 * 60)

    label = pitr_backup_scheduled()  # what the worker runs: a differential, the full one being fresh
    rows = pgbackrest.window().backups
    assert rows[0]["label"] == label and rows[0]["type"] == "diff"
    assert pitr_backup_kind(rows, now=datetime.now(UTC) + timedelta(days=7)) == "full"


def test_it_reports_stalled_archiving(settings):
    cluster = _new_cluster("stalled")
    settings.PITR_PGBACKREST_STANZA, settings.PITR_PGBACKREST_CONFIG = cluster.stanza, str(cluster.config)
    try:
        refused = _refusal("pitr_status")
        assert refused.returncode == 1 and "no backup yet" in str(refused)  # archiving works; nothing to restore from yet
        cluster.sql("ALTER SYSTEM SET archive_command = '/bin/false'")
        cluster.sql("SELECT pg_reload_conf()")
        cluster.sql("CREATE TABLE filler AS SELECT 1 AS x")
        cluster.sql("SELECT pg_switch_wal()")
        deadline = time.monotonic() + 30
        while not cluster.sql("SELECT failed_count FROM pg_stat_archiver")[0][0]:
            assert time.monotonic() < deadline, "the broken archive_command never ran"
            time.sleep(0.1)
        refused = _refusal("pitr_status")
        assert refused.returncode == 1
        assert str(refused).startswith("problem: WAL archiving is failing:") and "could not be archived" in str(refused)
    finally:
        _stop_all(cluster.base)


@pytest.fixture
def s3_store(tmp_path):
    """moto's S3 server on loopback behind a TLS proxy (pgBackRest speaks S3 over HTTPS only), with a bucket."""
    import boto3

    cert, key = tmp_path / "cert.pem", tmp_path / "key.pem"
    _run(
        ["openssl", "req", "-x509", "-newkey", "rsa:2048", "-nodes", "-keyout", str(key), "-out", str(cert)]
        + ["-days", "1", "-subj", "/CN=127.0.0.1"]
    )
    http_port, tls_port = _free_port(), _free_port()
    processes: list[subprocess.Popen] = [
        subprocess.Popen(
            [sys.executable, "-m", "moto.server", "-H", "127.0.0.1", "-p", str(http_port)],
            stdout=subprocess.DEVNULL,
            stderr=subprocess.DEVNULL,
        ),
        subprocess.Popen(
            [sys.executable, str(REPO_ROOT / "tests" / "tls_proxy.py"), str(tls_port), str(http_port), str(cert), str(key)],
            stdout=subprocess.PIPE,
            text=True,
        ),
    ]
    try:
        assert processes[1].stdout is not None and processes[1].stdout.readline().strip() == "ready"
        client = boto3.client(
            "s3",
            endpoint_url=f"http://127.0.0.1:{http_port}",
            aws_access_key_id="k",
            aws_secret_access_key="s",
            region_name="us-east-1",
        )
        deadline = time.monotonic() + 30
        while True:
            try:
                client.create_bucket(Bucket="guildhall-pitr")
                break
            except Exception:
                assert time.monotonic() < deadline, "moto's server did not start"
                time.sleep(0.2)
        yield f"127.0.0.1:{tls_port}"
    finally:
        for process in processes:
            process.terminate()
            process.wait(timeout=10)


def test_it_archives_into_an_s3_store_and_restores_from_it(s3_store, settings):
    s3 = ["--s3-bucket", "guildhall-pitr", "--s3-endpoint", s3_store, "--s3-uri-style", "path", "--s3-no-verify-tls"]
    cluster = _new_cluster("offsite", *s3, "--s3-key", "k", "--s3-key-secret", "s")
    settings.PITR_PGBACKREST_STANZA, settings.PITR_PGBACKREST_CONFIG = cluster.stanza, str(cluster.config)
    try:
        assert "repo1-type=s3" in cluster.config.read_text()
        _call("pitr_backup", "--type", "full")
        window = pgbackrest.window()
        assert window.repository == f"s3://guildhall-pitr{cluster.base / 'repo'}" and len(window.backups) == 1
        cluster.sql("CREATE TABLE drill (n int)")
        cluster.sql("INSERT INTO drill VALUES (1)")
        time.sleep(0.3)
        moment = datetime.now(UTC)
        time.sleep(0.3)
        cluster.sql("INSERT INTO drill VALUES (2)")
        _archive_now(cluster)
        port = _free_port()
        into = f"postgres://postgres@127.0.0.1:{port}/postgres?datadir={cluster.base}/restored"
        _call("pitr_restore", "--to", moment.isoformat(), "--into", into)
        assert cluster.sql("SELECT n FROM drill", port=port) == [(1,)]
    finally:
        _stop_all(cluster.base)
