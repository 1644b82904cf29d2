"""Backup pages: staff list; staff with ops.create_backup create; only superusers download, delete and restore."""

from __future__ import annotations

import pytest
from django.contrib.auth.models import Permission, User
from django.db import connection
from django.urls import reverse

from commands.models import CustomCommand
from commands.services import command_create
from ops.backups.catalog import backups_list, sidecar_path
from ops.backups.services import backup_create

pytestmark = pytest.mark.django_db(transaction=True)
GUILD = 99


@pytest.fixture
def backup(settings, tmp_path):
    settings.BACKUP_DIR = tmp_path / "backups"
    command_create(guild_id=GUILD, name="alpha", template="a", author_id=1)
    made = backup_create(kind="scheduled")
    CustomCommand.objects.all().delete()
    command_create(guild_id=GUILD, name="beta", template="b", author_id=1)
    return made


def _login(client, *, superuser: bool, may_create: bool = False):
    user = User.objects.create_user("su" if superuser else "staff", password="pw-123-long", is_staff=True, is_superuser=superuser)
    if may_create:
        user.user_permissions.add(Permission.objects.get(content_type__app_label="ops", codename="create_backup"))
    client.force_login(user)
    return client


@pytest.fixture
def staff(client):
    return _login(client, superuser=False)


@pytest.fixture
def creator(client):
    """Staff with the permission to create backups (and no other)."""
    return _login(client, superuser=False, may_create=True)


@pytest.fixture
def superuser(client):
    return _login(client, superuser=True)


def _names() -> set[str]:
    return set(CustomCommand.objects.values_list("name", flat=True))


def _urls(name: str) -> dict[str, str]:
    return {view: reverse(f"backups:{view}", args=[name]) for view in ("download", "delete", "restore")}


def test_it_sends_anonymous_users_to_the_login_page(client, backup):
    for url in [reverse("backups:index"), *_urls(backup.name).values()]:
        response = client.get(url)
        assert response.status_code == 302 and response["Location"].startswith(reverse("admin:login")), url
    response = client.post(reverse("backups:create"))
    assert response.status_code == 302 and len(backups_list()) == 1


def test_it_lists_backups_for_staff_in_the_admin_chrome(staff, backup):
    page = staff.get(reverse("backups:index")).content.decode()
    assert backup.name in page and backup.short_checksum in page and backup.engine_label in page
    assert 'id="user-tools"' in page  # the admin's header rendered
    assert "Create backup now" not in page  # needs ops.create_backup
    assert "Kept: the newest" in page
    assert reverse("backups:restore", args=[backup.name]) not in page  # superusers' links only


def test_it_says_how_to_turn_on_point_in_time_recovery_for_this_engine_while_it_is_off(staff, backup):
    page = staff.get(reverse("backups:index")).content.decode()
    assert 'id="recovery-off"' in page
    wanted, other = ("LITESTREAM_REPLICA_URL", "PITR_PGBACKREST_STANZA")
    if connection.vendor != "sqlite":
        wanted, other = other, wanted
    assert wanted in page and other not in page


def test_it_shows_superusers_the_actions_on_each_backup(superuser, backup):
    page = superuser.get(reverse("backups:index")).content.decode()
    for url in _urls(backup.name).values():
        assert url in page


def test_it_lets_staff_with_the_permission_create_a_backup(creator, backup):
    assert "Create backup now" in creator.get(reverse("backups:index")).content.decode()
    response = creator.post(reverse("backups:create"), follow=True)
    assert response.status_code == 200 and "made" in response.content.decode()
    assert len(backups_list()) == 2 and backups_list()[0].created_by == "staff"


def test_it_refuses_to_create_a_backup_for_staff_without_the_permission(staff, backup):
    assert staff.post(reverse("backups:create")).status_code == 403
    assert len(backups_list()) == 1


def test_it_lets_a_superuser_create_a_backup(superuser, backup):
    response = superuser.post(reverse("backups:create"), follow=True)
    assert "made" in response.content.decode() and len(backups_list()) == 2


def test_it_forbids_staff_who_are_not_superusers_to_download_delete_or_restore(staff, backup):
    for url in _urls(backup.name).values():
        assert staff.get(url).status_code == 403, url
        assert staff.post(url, {"confirmation": backup.name}).status_code == 403, url
    assert backup.path.exists() and _names() == {"beta"}


def test_it_lets_a_superuser_download_a_backup_and_its_sidecar(superuser, backup):
    response = superuser.get(reverse("backups:download", args=[backup.name]))
    assert response.status_code == 200 and b"".join(response.streaming_content) == backup.path.read_bytes()
    assert f'filename="{backup.name}"' in response["Content-Disposition"]
    side = superuser.get(reverse("backups:download", args=[backup.name]) + "?part=sidecar")
    assert b"".join(side.streaming_content) == sidecar_path(backup.path).read_bytes()


def test_it_answers_404_for_a_name_that_is_not_a_backup(superuser, backup):
    assert superuser.get(reverse("backups:download", args=["secret_key"])).status_code == 404
    assert superuser.get(reverse("backups:download", args=["..%2Fsecret_key"])).status_code == 404


def test_it_deletes_only_after_a_post(superuser, backup):
    url = reverse("backups:delete", args=[backup.name])
    assert "cannot be undone" in superuser.get(url).content.decode() and backup.path.exists()
    assert superuser.post(url).status_code == 302
    assert not backup.path.exists() and not sidecar_path(backup.path).exists()


def test_it_restores_nothing_when_the_typed_name_is_wrong(superuser, backup):
    url = reverse("backups:restore", args=[backup.name])
    page = superuser.get(url).content.decode()
    assert backup.sha256 in page and "csrfmiddlewaretoken" in page
    response = superuser.post(url, {"confirmation": "restore please"})
    assert response.status_code == 200 and "nothing was restored" in response.content.decode()
    assert _names() == {"beta"} and len(backups_list()) == 1  # no snapshot either


def test_it_restores_after_the_typed_confirmation(superuser, backup):
    response = superuser.post(reverse("backups:restore", args=[backup.name]), {"confirmation": backup.name}, follow=True)
    page = response.content.decode()
    assert response.status_code == 200 and f"Restored {backup.name}" in page
    assert _names() == {"alpha"}
    assert any(b.kind == "pre-restore" for b in backups_list())


def test_it_shows_a_refused_restore_as_an_error(superuser, backup):
    backup.path.write_bytes(backup.path.read_bytes()[:100])
    response = superuser.post(reverse("backups:restore", args=[backup.name]), {"confirmation": backup.name}, follow=True)
    assert "is incomplete" in response.content.decode() and _names() == {"beta"}


def test_it_needs_the_csrf_token(backup):
    from django.test import Client

    client = Client(enforce_csrf_checks=True)
    client.force_login(User.objects.create_user("su", password="pw-123-long", is_staff=True, is_superuser=True))
    assert client.post(reverse("backups:create")).status_code == 403
    assert client.post(reverse("backups:restore", args=[backup.name]), {"confirmation": backup.name}).status_code == 403
    assert _names() == {"beta"}


def test_it_links_the_backups_page_from_the_admin_index(staff, backup):
    assert reverse("backups:index") in staff.get(reverse("admin:index")).content.decode()


def test_it_allows_one_manual_backup_every_few_minutes(creator, backup, monkeypatch):
    from datetime import timedelta

    from ops.backups import services
    from ops.backups.errors import BackupTooSoon

    assert "made (" in creator.post(reverse("backups:create"), follow=True).content.decode()
    again = creator.post(reverse("backups:create"), follow=True).content.decode()
    assert "manual backups are one every 5 minutes, so try again in" in again and "by staff" in again
    assert len(backups_list()) == 2
    with pytest.raises(BackupTooSoon):
        backup_create(kind="manual")
    backup_create(kind="scheduled")  # the scheduler's are not limited
    monkeypatch.setattr(services, "MANUAL_BACKUP_INTERVAL", timedelta(0))
    assert "made (" in creator.post(reverse("backups:create"), follow=True).content.decode()
    assert len(backups_list()) == 4
