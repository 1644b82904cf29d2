"""API tokens, the backup permissions, unsigned restores and the timer settings, in a real browser."""

import hashlib
import json
import shutil
from datetime import timedelta

import pytest
from django.contrib.auth.models import Permission, User
from django.test import override_settings
from django.utils import timezone

from commands.models import CustomCommand
from commands.services import command_create
from ops.api_tokens import api_key_hash
from ops.backups.catalog import sidecar_path
from ops.backups.services import backup_create
from ops.models import ApiToken
from tests.browser.conftest import PASSWORD, log_in, shot
from timers.models import TimerSettings
from timers.services import timer_warnings_set

pytestmark = pytest.mark.django_db(transaction=True)
GUILD = 616161616161616161


@pytest.fixture
def staff(transactional_db) -> User:
    """Staff who may look at the Backups page but not make a backup."""
    return User.objects.create_user("helper", "helper@example.com", PASSWORD, is_staff=True)


def _plant_unsigned(backup_dir) -> str:
    """Copy a real backup under another name with a right checksum but no signature, as someone with folder access could."""
    original = backup_create(kind="scheduled")
    name = "guildhall-2026-06-01-000000-manual" + original.name.split("-scheduled", 1)[1]  # the engine's suffix
    target = backup_dir / name
    shutil.copyfile(original.path, target)
    facts = json.loads(sidecar_path(original.path).read_text())
    facts.pop("signature")
    data = target.read_bytes()
    facts.update(sha256=hashlib.sha256(data).hexdigest(), size=len(data), created_by="intruder", kind="manual")
    sidecar_path(target).write_text(json.dumps(facts))
    original.path.unlink()
    sidecar_path(original.path).unlink()
    return name


def test_it_creates_an_api_token_and_shows_its_key_once(page, superuser):
    log_in(page, superuser)
    page.goto("/admin/")
    page.click("a:has-text('API tokens')")
    page.wait_for_url("**/admin/ops/apitoken/")
    page.click(".object-tools a.addlink")
    page.wait_for_selector("#id_name")
    assert page.input_value("#id_lifetime_days") == "90"
    page.select_option("#id_user", label=superuser.username)
    page.fill("#id_name", "grafana dashboard")
    page.check("#id_read_only")
    shot(page, "api-token-add")
    page.click("input[name=_save]")
    page.wait_for_selector("#api-token-key")
    key = page.inner_text("#api-token-key").strip()
    text = page.inner_text("#content")
    shot(page, "api-token-created")

    token = ApiToken.objects.get(name="grafana dashboard")
    assert key.startswith("gh_") and token.key_hash == api_key_hash(key) and token.read_only
    expected = timezone.now() + timedelta(days=90)
    assert abs(token.expires_at - expected) < timedelta(minutes=5)
    assert f"{token.expires_at:%Y-%m-%d}" in text and "for reads only" in text and "cannot be shown again" in text

    page.click("a:has-text('Back to the API tokens')")
    page.wait_for_selector("#result_list")
    listed = page.inner_text("#result_list")
    assert "grafana dashboard" in listed and token.prefix in listed and key not in page.content()
    shot(page, "api-token-list")
    page.click("#result_list a:has-text('grafana dashboard')")
    page.wait_for_selector(".field-expires_at")
    assert key not in page.content()  # only its prefix, ever again
    assert "cannot create, change or delete" in page.inner_text(".field-read_only")
    shot(page, "api-token-detail")


def test_it_refuses_a_backup_to_staff_without_the_create_permission(page, staff, backup_dir):
    log_in(page, staff)
    page.goto("/admin/ops/backups/")
    page.wait_for_selector("#content-main")
    assert page.locator("input[value='Create backup now']").count() == 0
    assert "Can create a backup now" in page.inner_text("#backup-create-needs")
    shot(page, "backups-staff-without-create")

    # A forged form, with the session's own CSRF token, posted straight to the create URL.
    page.evaluate(
        """() => {
        const form = document.createElement('form');
        form.method = 'post';
        form.action = '/admin/ops/backups/create/';
        const token = document.querySelector('input[name=csrfmiddlewaretoken]').cloneNode();
        form.appendChild(token);
        document.body.appendChild(form);
        form.submit();
    }"""
    )
    page.wait_for_url("**/admin/ops/backups/create/")
    page.wait_for_selector("body")
    refusal = page.inner_text("#refusal")
    shot(page, "backups-create-forged")
    assert "needs the permission “Can create a backup now”" in refusal
    assert not backup_dir.exists() or not any(backup_dir.glob("guildhall-*"))

    staff.user_permissions.add(Permission.objects.get(codename="create_backup"))
    page.goto("/admin/ops/backups/")
    page.click("input[value='Create backup now']")
    page.wait_for_selector(".messagelist")
    assert "made" in page.inner_text(".messagelist")
    page.click("input[value='Create backup now']")  # the second within minutes
    page.wait_for_selector(".messagelist .error")
    assert "one every 5 minutes" in page.inner_text(".messagelist")
    shot(page, "backups-too-soon")
    assert page.locator("#backups a:has-text('Restore')").count() == 0  # restore stays the superuser's


def test_it_refuses_an_unsigned_backup_unless_a_superuser_trusts_it(page, superuser, staff, backup_dir):
    command_create(guild_id=GUILD, name="planted", template="from elsewhere", author_id=1)
    name = _plant_unsigned(backup_dir)
    CustomCommand.objects.filter(guild_id=GUILD).delete()
    command_create(guild_id=GUILD, name="ours", template="kept", author_id=1)

    log_in(page, superuser)
    page.goto("/admin/ops/backups/")
    page.wait_for_selector("#backups .gh-unsigned")
    page.click(f"#backups tr:has-text('{name}') a:has-text('Restore')")
    page.wait_for_selector("#backup-signature")
    assert "not signed" in page.inner_text("#backup-signature")
    assert page.locator("input[name=trust_unsigned]").count() == 1
    shot(page, "backup-restore-unsigned")

    page.fill("#id_confirmation", name)
    page.click("input[value='Restore this backup']")
    page.wait_for_selector(".messagelist .error")
    shot(page, "backup-restore-unsigned-refused")
    assert "was refused" in page.inner_text(".messagelist") and "override for unsigned files" in page.inner_text(".messagelist")
    assert page.locator("input[name=trust_unsigned]").count() == 1  # still on the page with the override
    assert set(CustomCommand.objects.filter(guild_id=GUILD).values_list("name", flat=True)) == {"ours"}

    page.fill("#id_confirmation", name)
    page.check("input[name=trust_unsigned]")
    page.click("input[value='Restore this backup']")
    page.wait_for_selector(".messagelist .success")
    shot(page, "backup-restore-unsigned-trusted")
    assert set(CustomCommand.objects.filter(guild_id=GUILD).values_list("name", flat=True)) == {"planted"}

    # The restore (and with it the override) is not staff's at all.
    staff = User.objects.get(username="helper")  # the restore brought back its own copy
    page.context.clear_cookies()
    log_in(page, staff)
    response = page.goto(f"/admin/ops/backups/{name}/restore/")
    assert response is not None and response.status == 403
    assert page.locator("input[name=trust_unsigned]").count() == 0
    assert "Only superusers" in page.inner_text("#refusal")
    shot(page, "backup-restore-staff")


def test_it_refuses_bad_warning_thresholds_and_saves_good_ones(page, superuser):
    timer_warnings_set(guild_id=GUILD, minutes=[60, 10, 1])
    log_in(page, superuser)
    page.goto("/admin/")
    page.click("a:has-text('Timer settings')")
    page.wait_for_url("**/admin/timers/timersettings/")
    page.click(f"#result_list a:has-text('{GUILD}')")
    page.wait_for_selector("#id_warning_minutes")
    assert page.input_value("#id_warning_minutes") == "60, 10, 1"
    shot(page, "timer-settings")

    for bad, said in (("60, ten, 1", "whole minutes"), ("0, 10", "from 1 to"), ("1 2 3 4 5 6 7 8 9 10 11", "At most")):
        page.fill("#id_warning_minutes", bad)
        page.click("input[name=_save]")
        page.wait_for_selector(".field-warning_minutes .errorlist")
        assert said in page.inner_text(".field-warning_minutes .errorlist")
        assert TimerSettings.objects.get(guild_id=GUILD).warning_minutes == [60, 10, 1]
    shot(page, "timer-settings-refused")

    page.fill("#id_warning_minutes", "5, 30")
    page.click("input[name=_save]")
    page.wait_for_selector(".messagelist")
    assert "changed successfully" in page.inner_text(".messagelist")
    shot(page, "timer-settings-saved")
    assert TimerSettings.objects.get(guild_id=GUILD).warning_minutes == [30, 5]


def test_it_shows_where_an_imported_command_came_from(page, superuser):
    command_create(guild_id=GUILD, name="weather", template="It is sunny", author_id=1)
    CustomCommand.objects.filter(guild_id=GUILD, name="weather").update(
        enabled=False,
        imported_from="Praetbot: weather",
        imported_source="msg.channel.send(fetch('https://example.com/weather'))",
    )
    log_in(page, superuser)
    page.goto(f"/admin/commands/customcommand/?q=guild:{GUILD}")
    page.click("#result_list a:has-text('weather')")
    page.wait_for_selector(".field-imported_from")
    assert "Praetbot: weather" in page.inner_text(".field-imported_from")
    assert "example.com/weather" in page.inner_text(".field-imported_source")
    assert page.locator("#id_imported_source").count() == 0  # shown, not editable
    shot(page, "command-imported")
