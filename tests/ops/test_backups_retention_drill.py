"""Backups: retention by count and by age, the restore drill, the schedule and the commands around migrate."""

from __future__ import annotations

import gzip
import hashlib
import json
from datetime import timedelta
from io import StringIO

import pytest
from django.core.management import CommandError, call_command
from django.db.migrations.executor import MigrationExecutor
from django.utils import timezone

from commands.services import command_create
from ops.backups.catalog import backups_list, facts_signature, sidecar_path
from ops.backups.drill import backup_drill
from ops.backups.errors import BackupNotFound
from ops.backups.services import backup_create, backups_apply_retention
from ops.backups.tasks import backup_scheduled
from ops.schedules import SCHEDULES

pytestmark = pytest.mark.django_db(transaction=True)


@pytest.fixture
def backup_dir(settings, tmp_path):
    settings.BACKUP_DIR = tmp_path / "backups"
    settings.BACKUP_DIR.mkdir()
    return settings.BACKUP_DIR


def _file(folder, name: str, *, age: timedelta, kind: str = "manual") -> str:
    """A backup file with a signed sidecar dated ``age`` ago (retention reads only the facts)."""
    data = gzip.compress(name.encode())
    (folder / name).write_bytes(data)
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
    (folder / f"{name}.metadata").write_text(json.dumps({**facts, "signature": facts_signature(facts)}))
    return name


def _left() -> list[str]:
    return [b.name for b in backups_list()]


def test_it_keeps_only_the_newest_by_count(backup_dir):
    names = [
        _file(backup_dir, f"guildhall-2026-01-0{i}-000000-scheduled.sqlite3.gz", age=timedelta(hours=i)) for i in range(1, 6)
    ]
    deleted = backups_apply_retention(keep_count=3, keep_days=30)
    assert sorted(deleted) == sorted(names[3:])
    assert _left() == names[:3]
    assert not any(sidecar_path(backup_dir / n).exists() for n in deleted)


def test_it_drops_backups_older_than_the_age_limit_but_never_the_newest(backup_dir):
    fresh = _file(backup_dir, "guildhall-2026-01-09-000000-scheduled.sqlite3.gz", age=timedelta(days=1))
    old = _file(backup_dir, "guildhall-2026-01-01-000000-scheduled.sqlite3.gz", age=timedelta(days=10))
    assert backups_apply_retention(keep_count=10, keep_days=7) == [old]
    assert _left() == [fresh]
    # Everything is past the limit now: the newest still stays.
    assert backups_apply_retention(keep_count=10, keep_days=7, now=timezone.now() + timedelta(days=30)) == []
    assert _left() == [fresh]


def test_it_sweeps_up_what_a_killed_backup_left_behind(backup_dir):
    import os

    stale, fresh = backup_dir / ".partial-aaaa.sqlite3.gz", backup_dir / ".partial-bbbb.sqlite3.gz"
    stale.write_bytes(b"x")
    fresh.write_bytes(b"x")
    two_days_ago = timezone.now().timestamp() - 2 * 86400
    os.utime(stale, (two_days_ago, two_days_ago))
    backups_apply_retention(keep_count=5, keep_days=5)
    assert not stale.exists() and fresh.exists()


def test_it_keeps_young_pre_restore_snapshots_and_files_it_did_not_make(backup_dir):
    newest = _file(backup_dir, "guildhall-2026-01-09-000000-manual.sqlite3.gz", age=timedelta(minutes=1))
    snapshot = _file(backup_dir, "guildhall-2026-01-08-000000-pre-restore.sqlite3.gz", age=timedelta(hours=2), kind="pre-restore")
    old_snapshot = _file(
        backup_dir, "guildhall-2026-01-01-000000-pre-restore.sqlite3.gz", age=timedelta(days=2), kind="pre-restore"
    )
    theirs = _file(backup_dir, "default-host-2026-01-01-000000.sqlite3.gz", age=timedelta(days=90))
    assert backups_apply_retention(keep_count=1, keep_days=1) == [old_snapshot]
    assert _left() == [newest, snapshot, theirs]


def test_it_reports_equal_counts_in_a_drill(backup_dir):
    command_create(guild_id=7, name="hello", template="hi", author_id=1)
    backup = backup_create(kind="manual")
    report = backup_drill()
    assert report.name == backup.name and report.ok
    rows = {row.table: row for row in report.rows}
    assert rows["commands_customcommand"].expected == rows["commands_customcommand"].restored == 1
    assert "django_migrations" in rows and rows["django_migrations"].restored > 0


def test_it_says_so_when_there_is_nothing_to_drill(backup_dir):
    with pytest.raises(BackupNotFound, match="no backup to drill"):
        backup_drill()


def test_it_prints_the_drill_table_and_fails_on_a_difference(backup_dir):
    command_create(guild_id=7, name="hello", template="hi", author_id=1)
    backup = backup_create(kind="manual")
    out = StringIO()
    call_command("backup_drill", stdout=out)
    assert "commands_customcommand" in out.getvalue() and "drill passed" in out.getvalue()

    side = sidecar_path(backup.path)
    facts = json.loads(side.read_text())
    facts["tables"]["commands_customcommand"] += 1  # the backup claims a row that is not in it
    facts["signature"] = facts_signature(facts)  # (signed, or the signature check would refuse it first)
    side.write_text(json.dumps(facts))
    out = StringIO()
    with pytest.raises(CommandError, match="1 table"):
        call_command("backup_drill", stdout=out)
    assert "MISMATCH" in out.getvalue()


def test_it_backs_up_before_migrate_only_when_migrations_are_pending(backup_dir, monkeypatch):
    out = StringIO()
    call_command("backup_before_migrate", stdout=out)
    assert "no pending migrations" in out.getvalue() and backups_list() == []

    monkeypatch.setattr(MigrationExecutor, "migration_plan", lambda self, targets: [("pending", False)])
    out = StringIO()
    call_command("backup_before_migrate", stdout=out)
    [backup] = backups_list()
    assert backup.kind == "pre-migrate" and backup.name in out.getvalue()
    assert len(out.getvalue().strip().splitlines()) == 1


def test_it_runs_the_daily_backup_with_retention(backup_dir, settings):
    settings.BACKUP_KEEP_COUNT = 1
    _file(backup_dir, "guildhall-2020-01-01-000000-scheduled.sqlite3.gz", age=timedelta(days=3), kind="scheduled")
    result = backup_scheduled()
    [backup] = backups_list()
    assert backup.kind == "scheduled" and backup.created_by == "scheduler"
    assert backup.name in result and "removed 1" in result


def test_it_schedules_the_backup_daily():
    [spec] = [s for s in SCHEDULES if s.func == "ops.backups.tasks.backup_scheduled"]
    assert spec.minutes == 24 * 60


def test_it_drills_the_newest_backup_of_this_engine(backup_dir):
    from django.db import connection

    backup = backup_create(kind="manual")
    other = "postgresql" if connection.vendor == "sqlite" else "sqlite"
    newer = _file(backup_dir, "guildhall-2099-01-01-000000-manual.psql.bin.gz", age=timedelta(hours=-1))
    side = sidecar_path(backup_dir / newer)
    facts = json.loads(side.read_text())
    facts["vendor"] = other
    side.write_text(json.dumps({**facts, "signature": facts_signature(facts)}))
    assert backup_drill().name == backup.name


def test_it_counts_manual_and_scheduled_backups_apart(backup_dir):
    scheduled = [
        _file(
            backup_dir, f"guildhall-2026-01-{day:02d}-000000-scheduled.sqlite3.gz", age=timedelta(days=20 - day), kind="scheduled"
        )
        for day in range(1, 6)
    ]
    manual = [
        _file(backup_dir, f"guildhall-2026-01-20-0000{n:02d}-manual.sqlite3.gz", age=timedelta(minutes=10 - n)) for n in range(5)
    ]
    deleted = backups_apply_retention(keep_count=3, keep_days=30)
    assert sorted(deleted) == sorted(scheduled[:2] + manual[:2])  # the two oldest of each kind
    left = _left()
    assert set(scheduled[2:]) <= set(left) and set(manual[2:]) <= set(left)


def test_it_keeps_the_scheduled_backups_after_14_quick_manual_creates_and_the_daily_run(backup_dir, client, settings):
    """The issue's scenario: a staff member clicks "create" 14 times, then the daily run applies retention."""
    from django.contrib.auth.models import Permission, User

    settings.BACKUP_KEEP_COUNT = 14
    daily = [
        _file(
            backup_dir, f"guildhall-2026-01-{day:02d}-030000-scheduled.sqlite3.gz", age=timedelta(days=15 - day), kind="scheduled"
        )
        for day in range(1, 15)
    ]
    clicker = User.objects.create_user("clicker", password="pw-clicker-123", is_staff=True)
    clicker.user_permissions.add(Permission.objects.get(codename="create_backup"))
    client.force_login(clicker)
    pages = [client.post("/admin/ops/backups/create/", follow=True).content.decode() for _ in range(14)]
    assert sum(" bytes)." in page for page in pages) == 1  # "Backup … made (N bytes).": one per few minutes
    assert all("manual backups are one every 5 minutes" in page for page in pages[1:])
    # Even had every click gone through (say, over a fortnight): 14 more manual backups.
    for n in range(14):
        _file(backup_dir, f"guildhall-2026-01-15-0100{n:02d}-manual.sqlite3.gz", age=timedelta(hours=1, minutes=n))

    backup_scheduled()

    kept = {b.name for b in backups_list() if b.kind == "scheduled"}
    assert len(kept) == 14 and set(daily[1:]) <= kept  # today's run, then the 13 newest before it
    assert daily[0] not in kept  # only the 15th scheduled one made room, for a scheduled one
