"""The events page (the activity log) in a browser: from a guild's settings to its events, names, failures
marked, narrowed to a kind; a staff member without the permission is refused."""

from datetime import timedelta

import pytest
from django.contrib.auth.models import Permission, User

from commands.services import command_create, cookie_set, guild_settings_update
from guilds.services.directory import ChannelSeen, DirectoryBatch, GuildSeen, MemberSeen, RoleSeen, directory_record
from guilds.services.log import log_channel_set
from tests.browser.conftest import PASSWORD, log_in, shot
from timers.models import ExpiryOutcome
from timers.services import timer_pause, timer_set
from timers.services.sweeps import sweep_claim_expiries, sweep_record_expiries

pytestmark = pytest.mark.django_db(transaction=True)
GUILD = 737373737373737373
ALICE, BOB, CAROL, BOOSTER, LOGS = 1001, 1002, 1003, 2001, 3001


def fill() -> None:
    directory_record(
        batch=DirectoryBatch(
            guilds=[GuildSeen(GUILD, "Pixel Garden")],
            roles=[RoleSeen(GUILD, BOOSTER, "Booster")],
            channels=[ChannelSeen(GUILD, LOGS, "mod-log")],
            members=[
                MemberSeen(GUILD, ALICE, "alice", "Alice"),
                MemberSeen(GUILD, BOB, "bob", nick="Bob the Mod"),
                MemberSeen(GUILD, CAROL, "carol", "Carol"),
            ],
        )
    )
    guild_settings_update(guild_id=GUILD, prefix="!!")
    log_channel_set(guild_id=GUILD, channel_id=LOGS, actor_id=BOB)
    timer_set(guild_id=GUILD, member_id=ALICE, role_id=BOOSTER, duration=timedelta(days=30), actor_id=BOB)
    timer_pause(guild_id=GUILD, member_id=ALICE, role_id=BOOSTER, actor_id=BOB)
    cookie_set(guild_id=GUILD, member_id=CAROL, balance=25, actor_id=BOB)
    command_create(guild_id=GUILD, name="rules", template="Read #rules, {user}", author_id=BOB)
    from django.utils import timezone

    now = timezone.now()
    timer_set(
        guild_id=GUILD,
        member_id=CAROL,
        role_id=BOOSTER,
        duration=timedelta(minutes=1),
        actor_id=BOB,
        now=now - timedelta(minutes=3),
    )
    for timer in sweep_claim_expiries(owner="b", now=now):
        sweep_record_expiries(outcomes=[(timer.pk, ExpiryOutcome.FORBIDDEN, "403 Missing Permissions")], owner="b", now=now)


def test_an_admin_follows_a_guild_to_its_events_and_narrows_them(page, superuser):
    fill()
    log_in(page, superuser)
    page.goto("/admin/commands/guildsettings/")
    page.click("#result_list a:has-text('events')")
    page.wait_for_selector("#result_list")
    text = page.inner_text("#result_list")
    assert "Alice (@alice)'s @Booster timer set to 30d by Bob the Mod (@bob)" in text
    assert "Carol (@carol)'s cookies set to 25 (was 0) by Bob the Mod (@bob)" in text
    assert "Command `rules` created by Bob the Mod (@bob)" in text
    assert "Log channel set to #mod-log by Bob the Mod (@bob)" in text
    assert "Carol (@carol)'s @Booster timer ran out, but I may not remove the role" in text and "⚠️ failed" in text
    assert "Pixel Garden" in text
    rows = page.locator("#result_list tbody tr")
    assert "timer.expire_failed" in rows.first.inner_text()  # newest first
    shot(page, "activity-log")

    page.fill("#searchbar", f"{GUILD} failed:yes")
    page.press("#searchbar", "Enter")
    page.wait_for_selector("#result_list")
    assert page.locator("#result_list tbody tr").count() == 1
    shot(page, "activity-log-failures")

    page.fill("#searchbar", '"pixel" kind:cookie.set')
    page.press("#searchbar", "Enter")
    page.wait_for_selector("#result_list")
    assert page.locator("#result_list tbody tr").count() == 1
    assert "cookies set to 25" in page.inner_text("#result_list")

    page.click("#result_list tbody tr a")
    page.wait_for_selector("#content")
    assert "Carol (@carol)'s cookies set to 25" in page.inner_text("#content")
    assert page.locator("input[name=_save]").count() == 0  # read-only
    shot(page, "activity-log-entry")


def test_a_staff_member_without_the_permission_is_refused(page, transactional_db):
    fill()
    user = User.objects.create_user("helper", "helper@example.com", PASSWORD, is_staff=True)
    user.user_permissions.set(Permission.objects.filter(codename="view_guildsettings"))
    log_in(page, user)
    response = page.goto("/admin/guilds/logentry/")
    assert response is not None and response.status == 403
    user.user_permissions.add(Permission.objects.get(codename="view_logentry", content_type__app_label="guilds"))
    response = page.goto("/admin/guilds/logentry/")
    assert response is not None and response.status == 200
    assert "Pixel Garden" in page.inner_text("#result_list")
