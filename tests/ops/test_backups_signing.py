"""Backup sidecars are signed (HMAC keyed from SECRET_KEY); unsigned or foreign files are refused unless a superuser says otherwise."""

from __future__ import annotations

import hashlib
import json
import logging
import shutil
from io import StringIO

import pytest
from django.contrib.auth.models import User
from django.core.management import CommandError, call_command
from django.urls import reverse

from commands.models import CustomCommand
from commands.services import command_create
from ops.backups.catalog import backup_get, backups_list, facts_signature, sidecar_path
from ops.backups.drill import backup_drill
from ops.backups.errors import BackupUnsigned
from ops.backups.services import backup_create, backup_restore

GUILD = 5151
pytestmark = pytest.mark.django_db(transaction=True)


def _names() -> set[str]:
    return set(CustomCommand.objects.filter(guild_id=GUILD).values_list("name", flat=True))


def _plant(source, name: str, *, signature: str | None) -> str:
    """Copy a real backup under ``name`` with a sidecar whose plain SHA-256 and size are right."""
    target = source.path.with_name(name)
    shutil.copyfile(source.path, target)
    facts = json.loads(sidecar_path(source.path).read_text())
    facts.pop("signature")
    data = target.read_bytes()
    facts.update(sha256=hashlib.sha256(data).hexdigest(), size=len(data), created_by="intruder")
    if signature is not None:
        facts["signature"] = signature
    sidecar_path(target).write_text(json.dumps(facts))
    return name


@pytest.fixture
def planted(backup_dir):
    """A backup holding `planted` and the superuser `intruder`, dropped in the folder without our signature."""
    command_create(guild_id=GUILD, name="planted", template="pwned", author_id=1)
    User.objects.create_user("intruder", password="pw-intruder-123", is_staff=True, is_superuser=True)
    original = backup_create(kind="scheduled")
    name = _plant(original, "guildhall-2026-06-01-000000-manual.sqlite3.gz", signature=None)
    original.path.unlink()
    sidecar_path(original.path).unlink()
    CustomCommand.objects.all().delete()
    User.objects.filter(username="intruder").delete()
    command_create(guild_id=GUILD, name="ours", template="hi", author_id=1)
    return backup_get(name)


def test_it_signs_every_backup_it_makes(backup_dir):
    backup = backup_create(kind="scheduled")
    facts = json.loads(sidecar_path(backup.path).read_text())
    assert len(facts["signature"]) == 64 and facts["signature"] == facts_signature(facts)
    assert backup.signature_problem == ""


def test_it_refuses_a_planted_file_with_a_correct_checksum_and_no_signature(planted):
    assert planted.problem == "" and planted.signature_problem == "its sidecar is not signed"
    before = {b.name for b in backups_list()}
    with pytest.raises(BackupUnsigned, match="not signed, so this installation did not make it"):
        backup_restore(name=planted.name)
    assert _names() == {"ours"} and not User.objects.filter(username="intruder").exists()
    assert {b.name for b in backups_list()} == before  # refused before any snapshot was taken


@pytest.mark.parametrize("how", ["another key", "garbage", "edited after signing"])
def test_it_refuses_a_sidecar_signed_with_another_key(planted, how):
    side = sidecar_path(planted.path)
    facts = json.loads(side.read_text())
    if how == "another key":
        facts["signature"] = facts_signature(facts, secret="the other installation's SECRET_KEY")
    elif how == "garbage":
        facts["signature"] = "0" * 64
    else:
        facts["signature"] = facts_signature(facts)
        facts["created_by"] = "someone else"
    side.write_text(json.dumps(facts))
    with pytest.raises(BackupUnsigned, match="signature is not this installation's"):
        backup_restore(name=planted.name)
    assert _names() == {"ours"}


def test_it_restores_an_unsigned_file_when_a_superuser_says_so_and_logs_who(planted, caplog):
    root = User.objects.create_user("root", password="pw-root-123", is_staff=True, is_superuser=True)
    with caplog.at_level(logging.WARNING, logger="ops.backups"):
        outcome = backup_restore(name=planted.name, user=root, trust_unsigned=True)
    assert _names() == {"planted"} and outcome.snapshot
    warned = [r.getMessage() for r in caplog.records if r.levelno == logging.WARNING]
    assert any(planted.name in m and "without a valid signature" in m and "trusted by root" in m for m in warned), warned


def test_it_will_not_let_staff_who_are_not_superusers_override(planted):
    staff = User.objects.create_user("staff", password="pw-staff-123", is_staff=True)
    with pytest.raises(BackupUnsigned, match="Only a superuser"):
        backup_restore(name=planted.name, user=staff, trust_unsigned=True)
    assert _names() == {"ours"}


def test_it_still_accepts_backups_signed_before_a_key_rotation(backup_dir, settings):
    backup = backup_create(kind="scheduled")
    old_key = settings.SECRET_KEY
    settings.SECRET_KEY, settings.SECRET_KEY_FALLBACKS = "a-brand-new-secret-key-" + "x" * 40, [old_key]
    assert backup_get(backup.name).signature_problem == ""
    settings.SECRET_KEY_FALLBACKS = []
    assert "not this installation's" in backup_get(backup.name).signature_problem


def test_the_restore_page_refuses_an_unsigned_file_unless_the_override_is_ticked(planted, client, caplog):
    client.force_login(User.objects.create_user("root", password="pw-root-123", is_staff=True, is_superuser=True))
    url = reverse("backups:restore", args=[planted.name])
    page = client.get(url).content.decode()
    assert "not signed" in page and 'name="trust_unsigned"' in page
    refused = client.post(url, {"confirmation": planted.name}, follow=True).content.decode()
    assert "was refused" in refused and _names() == {"ours"}
    with caplog.at_level(logging.WARNING, logger="ops.backups"):
        done = client.post(url, {"confirmation": planted.name, "trust_unsigned": "on"}, follow=True).content.decode()
    assert f"Restored {planted.name}" in done and _names() == {"planted"}
    assert any("trusted by root" in r.getMessage() for r in caplog.records)


def test_the_list_marks_unsigned_files(planted, client):
    client.force_login(User.objects.create_user("root", password="pw-root-123", is_staff=True, is_superuser=True))
    assert "gh-unsigned" in client.get(reverse("backups:index")).content.decode()


def test_the_drill_refuses_an_unsigned_file_unless_told_to_trust_it(planted, caplog):
    with pytest.raises(BackupUnsigned):
        backup_drill(name=planted.name)
    with pytest.raises(CommandError, match="was refused"):
        call_command("backup_drill", "--name", planted.name, stdout=StringIO())
    out = StringIO()
    with caplog.at_level(logging.WARNING, logger="ops.backups"):
        call_command("backup_drill", "--name", planted.name, "--trust-unsigned", stdout=out)
    assert "drill passed" in out.getvalue()
    assert any("trusted by manage.py backup_drill --trust-unsigned" in r.getMessage() for r in caplog.records)


def test_the_drill_picks_the_newest_signed_backup_by_default(planted):
    command_create(guild_id=GUILD, name="later", template="x", author_id=1)
    signed = backup_create(kind="scheduled")
    sidecar = json.loads(sidecar_path(planted.path).read_text())
    assert sidecar["created_at"] > json.loads(sidecar_path(signed.path).read_text())["created_at"] or True
    assert backup_drill().name == signed.name
