"""Backups: create → change → restore brings the data back; bad files are refused and change nothing."""

from __future__ import annotations

import gzip
import hashlib
import json
import sqlite3

import pytest
from django.db import connection

from commands.models import CustomCommand
from commands.services import command_create
from ops.backups import services
from ops.backups.catalog import backups_list, facts_signature, sidecar_path
from ops.backups.engines import engine_for
from ops.backups.errors import (
    BackupChecksumMismatch,
    BackupDamaged,
    BackupForeignEngine,
    BackupNotFound,
    BackupSchemaNewer,
    BackupSidecarMissing,
    RestoreFailed,
)
from ops.backups.services import backup_create, backup_restore, backup_verify

GUILD = 4242
pytestmark = pytest.mark.django_db(transaction=True)


def _names() -> set[str]:
    return set(CustomCommand.objects.filter(guild_id=GUILD).values_list("name", flat=True))


def _command(name: str) -> None:
    command_create(guild_id=GUILD, name=name, template=f"{name}!", author_id=1)


def _reseal(path) -> None:
    """Rewrite the sidecar's checksum, size and signature to match the file.

    A tamperer who also holds SECRET_KEY: what the checks after the signature still catch.
    (test_backups_signing covers the tamperer without it.)
    """
    side = sidecar_path(path)
    facts = json.loads(side.read_text())
    data = path.read_bytes()
    facts.update(sha256=hashlib.sha256(data).hexdigest(), size=len(data))
    facts["signature"] = facts_signature(facts)
    side.write_text(json.dumps(facts))


@pytest.fixture
def saved(backup_dir):
    """A backup holding the commands `alpha` and `beta`, then a database that moved on."""
    _command("alpha")
    _command("beta")
    backup = backup_create(kind="manual")
    CustomCommand.objects.filter(name="alpha").delete()
    _command("gamma")
    return backup


def _assert_refused(backup, error, text: str) -> None:
    before = {b.name for b in backups_list()}
    with pytest.raises(error, match=text):
        backup_restore(name=backup.name)
    assert _names() == {"beta", "gamma"}  # the data is as it was
    assert {b.name for b in backups_list()} == before  # refused before any snapshot was taken


def test_it_writes_a_gzip_and_a_sidecar_with_the_facts(backup_dir):
    _command("alpha")
    backup = backup_create(kind="manual")
    facts = json.loads(sidecar_path(backup.path).read_text())
    assert backup.name.startswith("guildhall-") and backup.name.endswith(".gz")
    assert backup.path.parent == backup_dir.resolve()
    assert facts["sha256"] == hashlib.sha256(backup.path.read_bytes()).hexdigest()
    assert facts["size"] == backup.path.stat().st_size
    assert facts["vendor"] == connection.vendor and facts["engine"] == connection.settings_dict["ENGINE"]
    assert facts["connector"] == engine_for(connection.vendor).CONNECTOR
    assert facts["kind"] == "manual" and facts["created_by"] and facts["created_at"]
    assert facts["migrations"]["commands"] and facts["migrations"]["ops"]
    assert facts["tables"]["commands_customcommand"] == 1
    assert facts["signature"] == facts_signature(facts) and not backup.signature_problem
    assert backup_verify(name=backup.name).name == backup.name
    assert [b.name for b in backups_list()] == [backup.name]


def test_it_gives_two_backups_in_the_same_second_two_names(backup_dir):
    first, second = backup_create(kind="scheduled"), backup_create(kind="scheduled")
    assert first.name != second.name and len(backups_list()) == 2


def test_it_restores_the_data_and_keeps_a_pre_restore_snapshot(saved):
    from commands.services import commands_version

    version = commands_version(GUILD)
    outcome = backup_restore(name=saved.name)
    assert _names() == {"alpha", "beta"}
    assert commands_version(GUILD) != version  # the bots drop the commands they cached
    assert outcome.pending_migrations == 0
    snapshots = [b for b in backups_list() if b.kind == "pre-restore"]
    assert [s.name for s in snapshots] == [outcome.snapshot]
    # The snapshot is the way back: restoring it brings the state before the restore.
    backup_restore(name=outcome.snapshot)
    assert _names() == {"beta", "gamma"}


def test_it_refuses_a_truncated_file(saved):
    data = saved.path.read_bytes()
    saved.path.write_bytes(data[: len(data) // 2])
    _assert_refused(saved, BackupDamaged, "incomplete")


def test_it_refuses_a_truncated_file_even_with_a_matching_sidecar(saved):
    data = saved.path.read_bytes()
    saved.path.write_bytes(data[: len(data) - 20])
    _reseal(saved.path)
    _assert_refused(saved, BackupDamaged, "compressed stream ends early")


def test_it_refuses_a_file_with_one_flipped_byte(saved):
    data = bytearray(saved.path.read_bytes())
    data[len(data) // 2] ^= 0x01
    saved.path.write_bytes(bytes(data))
    _assert_refused(saved, BackupChecksumMismatch, "does not match its checksum")


def test_it_refuses_a_flipped_byte_even_with_a_matching_sidecar(saved):
    data = bytearray(saved.path.read_bytes())
    data[len(data) // 2] ^= 0x01
    saved.path.write_bytes(bytes(data))
    _reseal(saved.path)
    _assert_refused(saved, BackupDamaged, "damaged")


def test_it_refuses_a_backup_whose_sidecar_names_the_other_engine(saved):
    side = sidecar_path(saved.path)
    facts = json.loads(side.read_text())
    other = "postgresql" if connection.vendor == "sqlite" else "sqlite"
    facts.update(vendor=other, engine=f"django.db.backends.{'postgresql' if other == 'postgresql' else 'sqlite3'}")
    side.write_text(json.dumps(facts))
    _assert_refused(saved, BackupForeignEngine, "restores only into the engine it came from")


def test_it_refuses_a_file_of_the_other_engine_behind_a_lying_sidecar(saved, tmp_path):
    if connection.vendor == "postgresql":
        # A real SQLite database, dressed up as this engine's backup.
        db_path = tmp_path / "foreign.sqlite3"
        with sqlite3.connect(db_path) as db:
            db.execute("CREATE TABLE django_migrations (id integer primary key, app text, name text, applied text)")
        content, label = db_path.read_bytes(), "holds a SQLite database"
    else:
        content, label = b"PGDMP\x01\x0f\x00" + b"\x00" * 200, "holds a PostgreSQL database"
    saved.path.write_bytes(gzip.compress(content))
    _reseal(saved.path)
    _assert_refused(saved, BackupForeignEngine, label)


def test_it_refuses_a_backup_whose_schema_is_newer_than_the_code(backup_dir):
    _command("beta")
    _command("gamma")
    with connection.cursor() as cursor:
        cursor.execute(
            "INSERT INTO django_migrations (app, name, applied) VALUES ('commands', '9999_from_the_future', %s)",
            ["2030-01-01 00:00:00+00:00"],
        )
    try:
        future = backup_create(kind="manual")
    finally:
        with connection.cursor() as cursor:
            cursor.execute("DELETE FROM django_migrations WHERE name = '9999_from_the_future'")
    assert future.migrations["commands"] == "9999_from_the_future"
    _assert_refused(future, BackupSchemaNewer, r"newer version of Guildhall.*commands\.9999_from_the_future")


def test_it_refuses_a_backup_without_its_sidecar(saved):
    sidecar_path(saved.path).unlink()
    _assert_refused(saved, BackupSidecarMissing, "sidecar")


@pytest.mark.parametrize("name", ["../secret_key", "/etc/passwd", "nothing-here.sqlite3.gz", "x.metadata"])
def test_it_only_knows_backups_by_their_plain_names(backup_dir, name):
    with pytest.raises(BackupNotFound):
        backup_restore(name=name)


def test_it_puts_the_snapshot_back_when_a_restore_fails_part_way(saved, monkeypatch):
    engine = engine_for(connection.vendor)
    real_restore = engine.dump_restore
    calls = []

    def restore_that_breaks(path, *, alias, name):
        calls.append(path)
        if len(calls) == 1:
            CustomCommand.objects.all().delete()  # half of the work done ...
            raise RuntimeError("disk on fire")  # ... then the failure
        real_restore(path, alias=alias, name=name)

    monkeypatch.setattr(engine, "dump_restore", restore_that_breaks)
    with pytest.raises(RestoreFailed, match="put back as it was"):
        backup_restore(name=saved.name)
    assert _names() == {"beta", "gamma"}  # nothing saved after the backup was lost
    assert len(calls) == 2


def test_it_refuses_to_restore_when_the_snapshot_cannot_be_made(saved, monkeypatch):
    def no_snapshot(**kwargs):
        raise services.BackupFailed("The backup could not be made: disk full.")

    monkeypatch.setattr(services, "backup_create", no_snapshot)
    with pytest.raises(RestoreFailed, match="Nothing was restored"):
        backup_restore(name=saved.name)
    assert _names() == {"beta", "gamma"}


def test_it_refuses_a_whole_gzip_around_a_broken_dump(saved):
    dump = gzip.decompress(saved.path.read_bytes())
    saved.path.write_bytes(gzip.compress(dump[: len(dump) * 2 // 3]))
    _reseal(saved.path)
    _assert_refused(saved, BackupDamaged, "is damaged: (SQLite|pg_restore)")


def test_it_drops_tables_a_later_migration_added_so_that_migrate_can_run_again(saved):
    with connection.cursor() as cursor:
        cursor.execute(
            "CREATE TABLE later_table (id integer PRIMARY KEY, command_id bigint REFERENCES commands_customcommand (id))"
        )
        cursor.execute("INSERT INTO later_table VALUES (1, (SELECT MIN(id) FROM commands_customcommand))")
    try:
        backup_restore(name=saved.name)
        assert "later_table" not in connection.introspection.table_names()
        assert _names() == {"alpha", "beta"}
    finally:
        with connection.cursor() as cursor:
            cursor.execute("DROP TABLE IF EXISTS later_table")


def test_it_lists_a_manage_py_dbbackup_file_but_will_not_restore_it_unverified(backup_dir, monkeypatch):
    from dbbackup import settings as dbbackup_settings
    from django.core.management import call_command

    monkeypatch.setattr(dbbackup_settings, "STORAGE_OPTIONS", {"location": str(backup_dir)})
    backup_dir.mkdir(parents=True, exist_ok=True)
    call_command("dbbackup", "--compress", "--quiet", "--database", "default")
    [listed] = backups_list()
    assert listed.kind == "manage.py dbbackup" and "no checksum" in listed.problem
    with pytest.raises(BackupSidecarMissing, match="no checksum"):
        backup_restore(name=listed.name)


@pytest.mark.postgres
def test_it_writes_files_that_manage_py_dbrestore_restores_too(saved, monkeypatch):
    from dbbackup import settings as dbbackup_settings
    from django.core.management import call_command

    monkeypatch.setattr(dbbackup_settings, "STORAGE_OPTIONS", {"location": str(saved.path.parent)})
    call_command("dbrestore", "--uncompress", "--input-filename", saved.name, "--noinput", "--quiet")
    assert _names() == {"alpha", "beta"}
