"""/api/v1/guilds/{guild}/timers/settings and /api/v1/guilds/{guild}/settings: read and change a server's settings."""

from __future__ import annotations

from datetime import timedelta

import pytest
from django.contrib.auth.models import User

from commands.models import GuildSettings
from commands.services import guild_settings_update
from guilds.services.directory import ChannelSeen, DirectoryBatch, RoleSeen, directory_record
from ops.api_tokens import api_token_create
from tests.api.conftest import GUILD, bearer, grant, patch
from timers.models import TimedRole, TimerSettings
from timers.services import timer_set

pytestmark = pytest.mark.django_db
TIMERS = f"/api/v1/guilds/{GUILD}/timers/settings"
SETTINGS = f"/api/v1/guilds/{GUILD}/settings"
CHANNEL, ROLE = 500000000000000001, 300000000000000001


def caller(*permissions: str):
    user = grant(User.objects.create_user(f"s-{User.objects.count()}", password="pw-caller-123", is_staff=True), *permissions)
    _, key = api_token_create(user=user, name="settings", created_by=None)
    return bearer(key)


def timer_row() -> tuple:
    found = TimerSettings.objects.filter(guild_id=GUILD).values_list(
        "on_leave", "on_role_missing", "notice", "notice_channel_id", "warning_minutes", "admin_role_id"
    )
    return tuple(found.first() or ())


# -- timer settings ------------------------------------------------------------------------------


def test_it_shows_the_defaults_of_a_guild_that_changed_nothing(api):
    data = api.get(TIMERS).json()
    assert {k: data[k] for k in ("on_leave", "on_role_missing", "notice", "warning_minutes", "admin_role_id")} == {
        "on_leave": "run",
        "on_role_missing": "restore",
        "notice": "off",
        "warning_minutes": [60, 10, 1],
        "admin_role_id": None,
    }
    assert data["updated_at"] is None and not TimerSettings.objects.exists()


def test_it_changes_only_the_timer_settings_sent_with_names(api):
    directory_record(
        batch=DirectoryBatch(channels=[ChannelSeen(GUILD, CHANNEL, "timers")], roles=[RoleSeen(GUILD, ROLE, "Mods")])
    )
    response = patch(api, TIMERS, {"on_leave": "pause", "notice": "channel", "notice_channel_id": str(CHANNEL)})
    assert response.status_code == 200, response.content
    assert timer_row() == ("pause", "restore", "channel", CHANNEL, [60, 10, 1], None)
    assert response.json()["notice_channel_name"] == "#timers"
    data = patch(api, TIMERS, {"warning_minutes": [5, 30], "admin_role_id": ROLE, "on_role_missing": "pause"}).json()
    assert timer_row() == ("pause", "pause", "channel", CHANNEL, [30, 5], ROLE)
    assert data["warning_minutes"] == [30, 5] and data["admin_role_name"] == "@Mods" and data["updated_at"]
    assert patch(api, TIMERS, {"admin_role_id": None}).json()["admin_role_id"] is None
    assert timer_row()[5] is None


def test_new_warning_times_reach_the_live_timers(api):
    timer = timer_set(guild_id=GUILD, member_id=7, role_id=ROLE, duration=timedelta(hours=3), actor_id=None).timer
    assert patch(api, TIMERS, {"warning_minutes": [120]}).status_code == 200
    fresh = TimedRole.objects.get(pk=timer.pk)
    assert fresh.next_warn_at == fresh.expires_at - timedelta(minutes=120)


def test_a_channel_alone_moves_channel_notices_and_is_refused_otherwise(api):
    refused = patch(api, TIMERS, {"notice_channel_id": str(CHANNEL)})
    assert refused.status_code == 400 and 'goes with notice "channel"' in refused.json()["detail"]
    patch(api, TIMERS, {"notice": "channel", "notice_channel_id": CHANNEL})
    assert patch(api, TIMERS, {"notice_channel_id": CHANNEL + 1}).json()["notice_channel_id"] == str(CHANNEL + 1)


@pytest.mark.parametrize(
    ("body", "status", "words"),
    [
        ({"warning_minutes": [0]}, 400, "Warning times are whole minutes from 1 to 10080."),
        ({"warning_minutes": [1, 2, 3, 4, 5, 6]}, 400, "At most 5 warning times."),
        ({"warning_minutes": ["ten"]}, 422, "warning_minutes"),
        ({"warning_minutes": None}, 400, "send [] for no warnings"),
        ({"notice": "channel"}, 400, "Say which channel the notices go to"),
        ({"on_leave": "explode"}, 422, "on_leave"),
        ({"on_leave": None}, 400, "on_leave can't be null"),
        ({"admin_role_id": "12ab"}, 422, "admin_role_id"),
        # A good value beside a bad one is not saved either.
        ({"on_leave": "pause", "warning_minutes": [99999]}, 400, "Warning times are whole minutes"),
        ({"on_leave": "pause", "admin_role_id": ROLE, "notice": "channel"}, 400, "Say which channel"),
    ],
)
def test_bad_timer_settings_change_nothing(api, body, status, words):
    patch(api, TIMERS, {"on_role_missing": "pause"})
    before = timer_row()
    response = patch(api, TIMERS, body)
    assert response.status_code == status, response.content
    assert words in response.content.decode()
    assert timer_row() == before


def test_timer_settings_need_their_own_permissions(staff_user):
    viewer = caller("timers.view_timersettings")
    assert viewer.get(TIMERS).status_code == 200
    refused = patch(viewer, TIMERS, {"on_leave": "pause"})
    assert refused.status_code == 403 and "timers.change_timersettings" in refused.json()["detail"]
    timers_only = caller("timers.view_timedrole", "timers.change_timedrole")
    assert timers_only.get(TIMERS).status_code == 403
    _, key = api_token_create(user=staff_user, name="ro", created_by=None, read_only=True)
    read_only = patch(bearer(key), TIMERS, {"on_leave": "pause"})
    assert read_only.status_code == 403 and "read-only" in read_only.json()["detail"]
    assert not TimerSettings.objects.exists()


# -- guild settings ------------------------------------------------------------------------------


def test_it_shows_and_changes_the_guild_settings_the_new_parts_added(api):
    data = api.get(SETTINGS).json()
    assert (data["thanks_enabled"], data["thanks_words"], data["cookie_roles_keep_all"], data["command_refusal"]) == (
        False,
        [],
        True,
        "reply",
    )
    response = patch(
        api,
        SETTINGS,
        {
            "thanks_enabled": True,
            "thanks_words": ["Cheers  Mate", "ty"],
            "cookie_roles_keep_all": False,
            "command_refusal": "silent",
        },
    )
    assert response.status_code == 200, response.content
    row = GuildSettings.objects.get(guild_id=GUILD)
    assert (row.thanks_enabled, row.thanks_words, row.cookie_roles_keep_all, row.command_refusal) == (
        True,
        ["cheers mate", "ty"],
        False,
        "silent",
    )
    assert response.json()["thanks_words"] == ["cheers mate", "ty"]
    assert patch(api, SETTINGS, {"cookie_daily_cap": None, "prefix": "?"}).json()["cookie_daily_cap"] is None
    assert GuildSettings.objects.get(guild_id=GUILD).prefix == "?"


@pytest.mark.parametrize(
    ("body", "status", "words"),
    [
        ({"thanks_words": ["<@1> thanks"]}, 400, "without mentions or formatting"),
        ({"thanks_words": [f"w{n}" for n in range(21)]}, 400, "up to 20 phrases"),
        ({"thanks_enabled": "yes"}, 422, "thanks_enabled"),
        ({"thanks_enabled": 1}, 422, "thanks_enabled"),
        ({"command_refusal": "loud"}, 422, "command_refusal"),
        ({"cookie_message_cap": 99}, 400, "between 1 and 25"),
        ({"prefix": "a b"}, 400, "no spaces"),
        ({"prefix": None}, 400, "prefix can't be null"),
        ({"thanks_enabled": True, "cookie_pair_cooldown_seconds": -1}, 400, "between 0 and 86400"),
    ],
)
def test_bad_guild_settings_change_nothing(api, body, status, words):
    guild_settings_update(guild_id=GUILD, thanks_words=["ty"])
    before = list(GuildSettings.objects.values())
    response = patch(api, SETTINGS, body)
    assert response.status_code == status, response.content
    assert words in response.content.decode()
    assert list(GuildSettings.objects.values()) == before


def test_guild_settings_need_their_own_permissions(staff_user):
    viewer = caller("commands.view_guildsettings")
    assert viewer.get(SETTINGS).status_code == 200
    refused = patch(viewer, SETTINGS, {"thanks_enabled": True})
    assert refused.status_code == 403 and "commands.change_guildsettings" in refused.json()["detail"]
    assert caller("commands.view_customcommand").get(SETTINGS).status_code == 403
    _, key = api_token_create(user=staff_user, name="ro", created_by=None, read_only=True)
    assert patch(bearer(key), SETTINGS, {"thanks_enabled": True}).status_code == 403
    assert not GuildSettings.objects.exists()
