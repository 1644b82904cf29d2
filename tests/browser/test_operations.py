"""Backups, database health and status, in a real browser."""

import pytest
from django.test import override_settings

from commands.models import CustomCommand
from commands.services import command_create, command_delete
from tests.browser.conftest import log_in, shot

pytestmark = pytest.mark.django_db(transaction=True)
GUILD = 515151515151515151


def test_it_backs_up_and_restores_from_the_dashboard(page, superuser, backup_dir):
    command_create(guild_id=GUILD, name="before", template="made before the backup", author_id=1)
    log_in(page, superuser)
    page.goto("/admin/ops/backups/")
    page.click("input[value='Create backup now']")
    page.wait_for_selector("#backups")
    name = page.inner_text("#backups tbody tr:first-child td:nth-child(2)").strip()
    shot(page, "backups-list")

    command_delete(guild_id=GUILD, name="before")
    command_create(guild_id=GUILD, name="after", template="made after the backup", author_id=1)

    page.click("#backups tbody tr:first-child a:has-text('Restore')")
    page.wait_for_selector("input[type=text]")
    page.fill("input[type=text]", "not the name")
    page.click("input[value='Restore this backup']")
    page.wait_for_selector(".errornote")
    assert CustomCommand.objects.filter(guild_id=GUILD, name="after").exists()  # nothing restored
    page.fill("input[type=text]", name)
    shot(page, "backup-restore-confirm")
    page.click("input[value='Restore this backup']")
    page.wait_for_selector(".messagelist")
    shot(page, "backup-restored")
    assert "estored" in page.inner_text(".messagelist")
    assert set(CustomCommand.objects.filter(guild_id=GUILD).values_list("name", flat=True)) == {"before"}


def test_it_shows_database_health_and_status(page, superuser):
    log_in(page, superuser)
    page.goto("/admin/ops/database/")
    page.wait_for_selector("#content")
    health = page.inner_text("#content")
    assert "pass" in health.lower()
    shot(page, "database-health")
    page.goto("/admin/ops/status/")
    page.wait_for_selector("#content")
    status = page.inner_text("#content")
    assert "not running" in status.lower() and "migrations" in status.lower()
    shot(page, "status")


def test_it_keeps_operations_pages_from_a_member(page, member):
    log_in(page, member)
    page.goto("/admin/ops/backups/")
    assert "/admin/login/" in page.url
    shot(page, "backups-refused")
