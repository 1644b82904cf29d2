"""Admin titles, breadcrumbs, messages and delete confirmations in a real browser: names, not ids."""

from __future__ import annotations

from datetime import timedelta

import pytest

from commands.models import CookieBalance, CustomCommand, GuildSettings
from commands.services import command_alias_add, command_create, cookie_give, guild_settings_update
from guilds.services.directory import DirectoryBatch, GuildSeen, MemberSeen, RoleSeen, directory_record
from tests.browser.conftest import log_in, shot
from timers.services import timer_set

pytestmark = pytest.mark.django_db(transaction=True)
SERVER, UNKNOWN = 626262626262626201, 626262626262626299
ALICE, BOB = 726262626262626201, 726262626262626202
BOOSTER = 826262626262626201
IDS = (str(SERVER), str(ALICE), str(BOOSTER))


@pytest.fixture
def world(transactional_db):
    directory_record(
        batch=DirectoryBatch(
            guilds=[GuildSeen(SERVER, "My Server")],
            roles=[RoleSeen(SERVER, BOOSTER, "Booster")],
            members=[MemberSeen(SERVER, ALICE, "alice", "Alice"), MemberSeen(SERVER, BOB, "bob", nick="Bobby")],
        )
    )
    command = command_create(guild_id=SERVER, name="hello", template="Hi {user}!", author_id=ALICE)
    command_alias_add(guild_id=SERVER, name="hello", alias="hi")
    timer = timer_set(guild_id=SERVER, member_id=ALICE, role_id=BOOSTER, duration=timedelta(hours=2), actor_id=None).timer
    cookie_give(guild_id=SERVER, giver_id=BOB, receiver_id=ALICE)
    return {
        "command": command,
        "timer": timer,
        "balance": CookieBalance.objects.get(guild_id=SERVER, member_id=ALICE),
        "settings": guild_settings_update(guild_id=SERVER, prefix="?"),
        "unknown": guild_settings_update(guild_id=UNKNOWN, prefix="$"),
    }


def heading(page) -> str:
    """The change page's subtitle and breadcrumb: where Django's admin names the object."""
    return page.inner_text("#content h2") + "\n" + page.inner_text(".breadcrumbs")


def message(page) -> str:
    return page.inner_text("ul.messagelist")


def no_ids(text: str) -> bool:
    return not any(i in text for i in IDS)


def test_a_new_admin_reads_names_in_titles_messages_and_delete_pages(page, superuser, world):
    log_in(page, superuser)

    page.goto(f"/admin/commands/customcommand/{world['command'].pk}/change/")
    shot(page, "titles-command-change")
    assert "hello (My Server)" in heading(page) and no_ids(heading(page))
    assert "hi → hello" in page.inner_text("#aliases-group")
    page.click("input[name=_save]")
    page.wait_for_selector("ul.messagelist")
    shot(page, "titles-command-saved")
    assert "hello (My Server)" in message(page) and no_ids(message(page))
    page.goto(f"/admin/commands/customcommand/{world['command'].pk}/delete/")
    shot(page, "titles-command-delete")
    confirmation = page.inner_text("#content")
    assert "hello (My Server)" in confirmation and "Command alias: hi → hello" in confirmation and no_ids(confirmation)

    page.goto(f"/admin/timers/timedrole/{world['timer'].pk}/change/")
    shot(page, "titles-timer-change")
    assert "@Booster for Alice (@alice) in My Server (active)" in heading(page) and no_ids(heading(page))
    page.goto(f"/admin/timers/timedrole/{world['timer'].pk}/history/")
    shot(page, "titles-timer-history")
    history = page.inner_text("#content h1") + page.inner_text(".breadcrumbs")
    assert "@Booster for Alice (@alice) in My Server" in history and no_ids(history)

    page.goto(f"/admin/commands/cookiebalance/{world['balance'].pk}/change/")
    shot(page, "titles-balance-change")
    assert "Alice (@alice) in My Server: 1 cookie" in heading(page) and no_ids(heading(page))
    page.click("input[name=_save]")
    page.wait_for_selector("ul.messagelist")
    assert "Alice (@alice) in My Server" in message(page) and no_ids(message(page))
    page.goto(f"/admin/commands/cookiebalance/{world['balance'].pk}/delete/")
    shot(page, "titles-balance-delete")
    confirmation = page.inner_text("#content")
    assert "Alice (@alice) in My Server: 1 cookie" in confirmation and no_ids(confirmation)
    page.click("input[type=submit]")
    page.wait_for_selector("ul.messagelist")
    assert "Alice (@alice) in My Server" in message(page) and not CookieBalance.objects.filter(member_id=ALICE).exists()

    page.goto(f"/admin/commands/guildsettings/{world['settings'].pk}/change/")
    shot(page, "titles-settings-change")
    assert "My Server" in heading(page) and no_ids(heading(page))
    page.click("input[name=_save]")
    page.wait_for_selector("ul.messagelist")
    shot(page, "titles-settings-saved")
    assert "“My Server” was changed successfully" in message(page)
    page.goto(f"/admin/commands/guildsettings/{world['unknown'].pk}/change/")
    assert f"guild {UNKNOWN}" in heading(page)  # a guild the bot never saw: its id

    page.goto("/admin/commands/guildsettings/")
    page.check("#action-toggle")
    page.select_option("select[name=action]", "delete_selected")
    page.click("button[name=index]")
    page.wait_for_selector("#content ul")
    shot(page, "titles-settings-bulk-delete")
    confirmation = page.inner_text("#content")
    assert "Guild settings: My Server" in confirmation and f"Guild settings: guild {UNKNOWN}" in confirmation
    assert str(SERVER) not in confirmation
    page.click("input[type=submit]")
    page.wait_for_selector("ul.messagelist")
    assert "Successfully deleted 2 guild settings" in message(page) and not GuildSettings.objects.exists()
    assert CustomCommand.objects.filter(name="hello").exists()


def test_a_viewer_reads_the_names_but_cannot_delete(page, member, world):
    from django.contrib.auth.models import Permission

    member.is_staff = True
    member.save()
    member.user_permissions.add(Permission.objects.get(codename="view_customcommand"))
    log_in(page, member)
    page.goto(f"/admin/commands/customcommand/{world['command'].pk}/change/")
    assert "hello (My Server)" in heading(page)
    assert page.locator("a.deletelink").count() == 0
    response = page.goto(f"/admin/commands/customcommand/{world['command'].pk}/delete/")
    assert response is not None and response.status == 403
