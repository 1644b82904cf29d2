"""Off-site copies: backups and retention archives kept in S3 (moto's server over HTTP), used from there.

Every test talks to a real S3-compatible server process on loopback (tests/s3server.py);
the broken upload is a connection really cut in the middle of a multipart upload.
"""

from __future__ import annotations

import gzip
import hashlib
import json
import os
import subprocess
import sys
from datetime import timedelta

import pytest
from django.contrib.auth.models import Permission, User
from django.core.exceptions import ImproperlyConfigured
from django.db import connection
from django.urls import reverse
from django.utils import timezone

from commands.models import CustomCommand
from commands.services import command_create, command_delete
from config.backup_storage import s3_storage_from_url
from ops.backups.catalog import backup_get, backups_list, facts_signature
from ops.backups.drill import backup_drill
from ops.backups.errors import BackupChecksumMismatch, BackupDamaged, BackupFailed
from ops.backups.retention import backups_apply_retention
from ops.backups.services import backup_create, backup_restore, backup_verify
from ops.retention import retention_cutoffs, retention_run
from tests.s3server import BUCKET, CuttingProxy, cutting_proxy, s3_backups, s3_server, s3_storage
from tests.timers.shortcuts import clear, hours, set_timer
from timers.models import TimedRole, TimerEvent, TimerState

pytestmark = pytest.mark.django_db(transaction=True)
GUILD = 424242


def _names() -> set[str]:
    return set(CustomCommand.objects.filter(guild_id=GUILD).values_list("name", flat=True))


def _login(client, *, superuser: bool, may_create: bool = False):
    user = User.objects.create_user("su" if superuser else "staff", password="pw-123-long", is_staff=True, is_superuser=superuser)
    if may_create:
        user.user_permissions.add(Permission.objects.get(content_type__app_label="ops", codename="create_backup"))
    client.force_login(user)
    return client


def _put_backup(s3, name: str, *, age: timedelta, kind: str) -> str:
    """A backup object with a signed sidecar, put straight into the bucket (retention reads only the facts)."""
    data = gzip.compress(name.encode())
    facts = {
        "engine": "django.db.backends.sqlite3",
        "vendor": "sqlite",
        "kind": kind,
        "created_by": "test",
        "created_at": (timezone.now() - age).isoformat(),
        "sha256": hashlib.sha256(data).hexdigest(),
        "size": len(data),
        "migrations": {},
        "tables": {},
    }
    client = s3.server.client()
    client.put_object(Bucket=BUCKET, Key=f"{s3.prefix}/{name}", Body=data)
    sidecar = json.dumps({**facts, "signature": facts_signature(facts)}).encode()
    client.put_object(Bucket=BUCKET, Key=f"{s3.prefix}/{name}.metadata", Body=sidecar)
    return name


def test_it_keeps_a_backup_in_the_bucket_and_lists_it_from_there(s3_backups, settings, client):
    command_create(guild_id=GUILD, name="alpha", template="a", author_id=1)
    backup = backup_create(kind="scheduled")
    assert s3_backups.names() == [backup.name, f"{backup.name}.metadata"]
    assert not settings.BACKUP_DIR.exists() or not any(settings.BACKUP_DIR.iterdir())  # nothing kept locally
    [listed] = backups_list()
    assert listed.name == backup.name and listed.path is None and not listed.problem and not listed.signature_problem
    stored = s3_backups.server.client().get_object(Bucket=BUCKET, Key=f"{s3_backups.prefix}/{backup.name}")
    body = stored["Body"].read()
    assert hashlib.sha256(body).hexdigest() == listed.sha256 and len(body) == listed.size
    assert stored["ContentType"] == "application/octet-stream" and "ContentEncoding" not in stored
    page = _login(client, superuser=False).get(reverse("backups:index")).content.decode()
    assert backup.name in page and backup.short_checksum in page


def test_it_downloads_the_remote_copy_through_the_page_for_superusers_only(s3_backups, client):
    backup = backup_create(kind="scheduled")
    url = reverse("backups:download", args=[backup.name])
    assert client.get(url).status_code == 302  # anonymous: to the login page
    creator = _login(client, superuser=False, may_create=True)  # may create backups, not download them
    assert creator.get(url).status_code == 403 and creator.get(url + "?part=sidecar").status_code == 403
    client.logout()
    superuser = _login(client, superuser=True)
    response = superuser.get(url)
    body = b"".join(response.streaming_content)
    stored = s3_backups.server.client().get_object(Bucket=BUCKET, Key=f"{s3_backups.prefix}/{backup.name}")["Body"].read()
    assert response.status_code == 200 and body == stored and int(response["Content-Length"]) == len(stored)
    assert f'filename="{backup.name}"' in response["Content-Disposition"]
    side = superuser.get(url + "?part=sidecar")
    assert json.loads(b"".join(side.streaming_content))["sha256"] == backup.sha256


def test_it_verifies_restores_and_drills_the_remote_copy(s3_backups):
    command_create(guild_id=GUILD, name="alpha", template="a", author_id=1)
    backup = backup_create(kind="manual")
    command_delete(guild_id=GUILD, name="alpha")
    command_create(guild_id=GUILD, name="beta", template="b", author_id=1)
    assert backup_verify(name=backup.name).name == backup.name
    outcome = backup_restore(name=backup.name)
    assert _names() == {"alpha"}
    assert f"{outcome.snapshot}.metadata" in s3_backups.names()  # the way back is off-site too
    report = backup_drill(name=backup.name)
    assert report.ok and report.rows


def test_it_refuses_a_remote_copy_changed_in_the_bucket(s3_backups):
    backup = backup_create(kind="scheduled")
    client, key = s3_backups.server.client(), f"{s3_backups.prefix}/{backup.name}"
    data = client.get_object(Bucket=BUCKET, Key=key)["Body"].read()
    client.put_object(Bucket=BUCKET, Key=key, Body=data[: len(data) // 2])
    with pytest.raises(BackupDamaged, match="incomplete"):
        backup_verify(name=backup.name)
    flipped = bytearray(data)
    flipped[len(flipped) // 2] ^= 0xFF
    client.put_object(Bucket=BUCKET, Key=key, Body=bytes(flipped))
    with pytest.raises(BackupChecksumMismatch):
        backup_restore(name=backup.name)


def test_it_applies_retention_by_count_and_by_age_to_the_bucket(s3_backups):
    by_count = [
        _put_backup(s3_backups, f"guildhall-2026-01-0{i}-000000-scheduled.sqlite3.gz", age=timedelta(hours=i), kind="scheduled")
        for i in range(1, 5)
    ]
    fresh = _put_backup(s3_backups, "guildhall-2026-01-09-000000-manual.sqlite3.gz", age=timedelta(days=1), kind="manual")
    old = _put_backup(s3_backups, "guildhall-2026-01-01-000000-manual.sqlite3.gz", age=timedelta(days=10), kind="manual")
    deleted = backups_apply_retention(keep_count=2, keep_days=5)
    assert sorted(deleted) == sorted([*by_count[2:], old])
    keys = s3_backups.names()
    assert keys == sorted(n + s for n in [*by_count[:2], fresh] for s in ("", ".metadata"))
    assert [b.name for b in backups_list()] == [by_count[0], by_count[1], fresh]


def test_it_writes_retention_archives_to_the_bucket(s3_backups, settings):
    now = timezone.now()
    set_timer(hours(2), member=7, now=now - timedelta(days=401))
    timer = clear(member=7).timer
    TimedRole.objects.filter(pk=timer.pk).update(state=TimerState.CLEARED, ended_at=now - timedelta(days=400))
    run = retention_run(now=now, cutoffs=retention_cutoffs(now, timer_days=365, ledger_days=0))
    assert not run.error and run.timers_archived == 1 and not TimedRole.objects.filter(pk=timer.pk).exists()
    key = run.archive_path.removeprefix(f"s3://{BUCKET}/")
    assert run.archive_path.startswith(f"s3://{BUCKET}/{s3_backups.prefix}/retention/retention-") and key.endswith(".jsonl.gz")
    body = s3_backups.server.client().get_object(Bucket=BUCKET, Key=key)["Body"].read()
    lines = [json.loads(line) for line in gzip.decompress(body).splitlines()]
    assert lines[0]["@kind"] == "header" and lines[1]["@kind"] == "timer" and lines[1]["id"] == timer.pk
    assert s3_backups.names() == [key.removeprefix(s3_backups.prefix + "/")]
    assert backups_list() == [] and not (settings.BACKUP_DIR / "retention").exists()
    assert TimerEvent.objects.filter(timer_id=timer.pk).count() == 0


@pytest.fixture
def ballast():
    """Adds 12 MB of incompressible rows when called, so that a dump goes up as a multipart upload of three parts."""

    def add() -> None:
        with connection.cursor() as cursor:
            cursor.execute(f"CREATE TABLE offsite_ballast (payload {'bytea' if connection.vendor == 'postgresql' else 'BLOB'})")
            for _ in range(12):
                cursor.execute("INSERT INTO offsite_ballast (payload) VALUES (%s)", [os.urandom(1 << 20)])

    try:
        yield add
    finally:
        with connection.cursor() as cursor:
            cursor.execute("DROP TABLE IF EXISTS offsite_ballast")


def test_it_marks_a_backup_failed_when_the_upload_breaks_half_way(s3_backups, cutting_proxy, settings, client, ballast):
    settings.STORAGES = {
        **settings.STORAGES,
        "dbbackup": s3_storage(
            cutting_proxy.endpoint, s3_backups.prefix, multipart_threshold=5 << 20, multipart_chunksize=5 << 20, max_concurrency=1
        ),
    }
    kept = backup_create(kind="scheduled")  # a good backup before, through the same path
    ballast()
    cutting_proxy.cut_after(7 << 20)  # into the second of three parts
    superuser = _login(client, superuser=True)
    page = superuser.post(reverse("backups:create"), follow=True).content.decode()
    assert cutting_proxy.cut_at is not None, "the upload finished before the cut"
    assert "could not be stored" in page and "nothing of it was kept" in page
    assert "cannot be read right now" in page  # the list, while the store is still away
    cutting_proxy.heal()
    # Nothing half-written is listed: the bucket holds the earlier backup only, and the parts
    # that reached the server are an unfinished upload, invisible to listings.
    assert s3_backups.names() == [kept.name, f"{kept.name}.metadata"]
    assert [b.name for b in backups_list()] == [kept.name]
    [orphan] = s3_backups.server.uploads(s3_backups.prefix + "/")
    assert orphan.endswith("-manual.sqlite3.gz" if connection.vendor == "sqlite" else "-manual.psql.bin.gz")
    # The clean-up that could not reach the store then is done by retention, which leaves
    # another program's unfinished upload in a shared bucket alone.
    foreign = f"{s3_backups.prefix}/their-export.tar"
    s3_backups.server.client().create_multipart_upload(Bucket=BUCKET, Key=foreign)
    backups_apply_retention(keep_count=5, keep_days=30, now=timezone.now() + timedelta(days=2))
    assert s3_backups.server.uploads(s3_backups.prefix + "/") == [foreign]
    assert [b.name for b in backups_list()] == [kept.name]


@pytest.mark.postgres
def test_it_round_trips_a_postgresql_backup_through_s3_with_dbrestore(s3_backups, settings, monkeypatch):
    from dbbackup import settings as dbbackup_settings
    from django.core.management import call_command

    command_create(guild_id=GUILD, name="alpha", template="a", author_id=1)
    backup = backup_create(kind="manual")
    assert backup.name.endswith(".psql.bin.gz") and backup_get(backup.name).vendor == "postgresql"
    assert s3_backups.names() == [backup.name, f"{backup.name}.metadata"]
    # django-dbbackup's own restore reads the same object through the same storage.
    command_delete(guild_id=GUILD, name="alpha")
    entry = settings.STORAGES["dbbackup"]
    monkeypatch.setattr(dbbackup_settings, "STORAGE", entry["BACKEND"])
    monkeypatch.setattr(dbbackup_settings, "STORAGE_OPTIONS", entry["OPTIONS"])
    call_command("dbrestore", "--uncompress", "--input-filename", backup.name, "--noinput", "--quiet")
    assert _names() == {"alpha"}


@pytest.mark.parametrize(
    "url, message",
    [
        ("/var/backups", "must be an s3:// URL"),
        ("gs://bucket/x", "must be an s3:// URL"),
        ("s3://key:secret@bucket/x", "must not hold credentials"),
        ("s3://Bad_Bucket/x", "not a valid bucket name"),
        ("s3://bucket:9000/x", "only a bucket and a prefix"),
        ("s3://bucket/a//b", "empty, '.' or '..' part"),
        ("s3://bucket/../x", "empty, '.' or '..' part"),
    ],
)
def test_it_refuses_a_storage_url_it_cannot_use(url, message):
    with pytest.raises(ImproperlyConfigured, match=message.replace("(", r"\(").replace(".", r"\.")):
        s3_storage_from_url(url)


def test_it_pins_the_s3_options():
    options = s3_storage_from_url("s3://my-bucket/guildhall/prod/", endpoint_url="http://minio.local:9000")["OPTIONS"]
    assert options["bucket_name"] == "my-bucket" and options["location"] == "guildhall/prod"
    assert options["default_acl"] is None and options["querystring_auth"] is True
    assert options["client_config"].signature_version == "s3v4"
    assert options["client_config"].s3 == {"addressing_style": "path"}
    plain = s3_storage_from_url("s3://my-bucket")["OPTIONS"]
    assert plain["location"] == "" and plain["endpoint_url"] is None and plain["client_config"].s3 == {"addressing_style": "auto"}
    with pytest.raises(ImproperlyConfigured, match="BACKUP_S3_ENDPOINT_URL must be an http"):
        s3_storage_from_url("s3://my-bucket", endpoint_url="minio.local:9000")


def test_it_stops_at_start_up_on_a_bad_storage_url(tmp_path):
    env = {**os.environ, "BACKUP_STORAGE_URL": "ftp://backups.example.com/x", "GUILDHALL_DATA_DIR": str(tmp_path)}
    env.pop("DATABASE_URL", None)
    done = subprocess.run(
        [sys.executable, "-c", "import django; django.setup()"], env=env, capture_output=True, text=True, timeout=60
    )
    assert done.returncode != 0 and "BACKUP_STORAGE_URL must be an s3:// URL" in done.stderr


def test_the_pages_about_one_backup_say_the_store_is_away_and_change_nothing(s3_backups, cutting_proxy, settings, client):
    settings.STORAGES = {**settings.STORAGES, "dbbackup": s3_storage(cutting_proxy.endpoint, s3_backups.prefix)}
    kept = backup_create(kind="scheduled")
    superuser = _login(client, superuser=True)
    cutting_proxy.cut_after(0)  # the store goes away: every connection is refused
    pages = [
        superuser.get(reverse("backups:download", args=[kept.name])),
        superuser.get(reverse("backups:delete", args=[kept.name])),
        superuser.post(reverse("backups:delete", args=[kept.name])),
        superuser.get(reverse("backups:restore", args=[kept.name])),
        superuser.post(reverse("backups:restore", args=[kept.name]), {"confirmation": kept.name}),
    ]
    for page in pages:
        assert page.status_code == 302 and page.url == reverse("backups:index"), page.status_code
    shown = [str(m) for m in superuser.get(reverse("backups:index")).context["messages"]]
    assert shown and all("Nothing was changed." in text for text in shown[: len(pages)])
    cutting_proxy.heal()
    assert s3_backups.names() == [kept.name, f"{kept.name}.metadata"]
    assert [b.name for b in backups_list()] == [kept.name]
