"""The custom command's admin form: restrictions picked by name or typed as ids, and the preview endpoint."""

from __future__ import annotations

import pytest
from django.contrib.auth.models import Permission, User
from django.test import Client
from django.urls import reverse

from commands.models import CustomCommand, GuildSettings
from commands.services import command_create, command_update
from commands.template_preview import SAMPLE_USER_ID
from guilds.models import Channel, Guild, Role
from tests.conftest import GUILD

VIP, MUTED, GENERAL, BOTS = 111111111111111111, 333333333333333333, 444444444444444444, 555555555555555555
PREVIEW = "admin:commands_customcommand_preview"
pytestmark = pytest.mark.django_db


def staff(username: str, *codenames: str) -> Client:
    user = User.objects.create_user(username, password="pw-staff-12345", is_staff=True)
    user.user_permissions.add(*Permission.objects.filter(content_type__app_label="commands", codename__in=codenames))
    client = Client()
    client.force_login(user)
    return client


@pytest.fixture
def admin_client_(db) -> Client:
    client = Client()
    client.force_login(User.objects.create_superuser("root", "root@example.com", "pw-root-12345"))
    return client


@pytest.fixture
def greet(db) -> CustomCommand:
    return command_create(guild_id=GUILD, name="greet", template="Hi {user}, {0}! {random: a | b}", author_id=None)


@pytest.fixture
def directory(db) -> None:
    Guild.objects.create(guild_id=GUILD, name="My Guild")
    Role.objects.create(guild_id=GUILD, role_id=VIP, name="VIP")
    Role.objects.create(guild_id=GUILD, role_id=MUTED, name="Muted")
    Role.objects.create(guild_id=GUILD, role_id=GUILD, name="@everyone")
    Channel.objects.create(guild_id=GUILD, channel_id=GENERAL, name="general")
    Channel.objects.create(guild_id=GUILD, channel_id=BOTS, name="bots")
    Channel.objects.create(guild_id=GUILD, channel_id=777, name="Text channels", kind=4)


def change_form(command: CustomCommand, **fields) -> dict:
    form = {
        "template": command.template,
        "enabled": "on",
        "cooldown_seconds": 0,
        "cooldown_scope": "member",
        "note": "",
        "aliases-TOTAL_FORMS": 0,
        "aliases-INITIAL_FORMS": 0,
    }
    return {**form, **fields}


def change_url(command: CustomCommand) -> str:
    return reverse("admin:commands_customcommand_change", args=[command.pk])


# -- the preview ------------------------------------------------------------------------
def test_it_renders_a_template_with_the_sample_values(admin_client_):
    answer = admin_client_.post(reverse(PREVIEW), {"template": "Hi {user} in {channel}: {args} ({cookies}) {user.id}"})
    assert answer.status_code == 200
    assert answer.json() == {"text": f"Hi @Alice in #general: first second third (42) {SAMPLE_USER_ID}", "error": None}


def test_it_names_the_guild_from_the_directory(admin_client_, directory):
    answer = admin_client_.post(reverse(PREVIEW), {"template": "Welcome to {guild}", "guild_id": str(GUILD)})
    assert answer.json()["text"] == "Welcome to My Guild"
    answer = admin_client_.post(reverse(PREVIEW), {"template": "Welcome to {guild}", "guild_id": "not a number"})
    assert answer.json()["text"] == "Welcome to My Server"


@pytest.mark.parametrize(
    "template, words",
    [
        ("{0.__class__}", "not a placeholder I know"),
        ("{user", "unmatched"),
        ("", "can't be empty"),
        ("x" * 2001, "limit is 2000"),
        ("x" * 50_000, "limit is 2000"),
        ("{random}", "needs options"),
    ],
)
def test_it_answers_a_bad_template_with_its_error_never_a_500(admin_client_, template, words):
    answer = admin_client_.post(reverse(PREVIEW), {"template": template})
    assert answer.status_code == 200
    assert answer.json()["text"] is None and words in answer.json()["error"]


def test_it_never_pings_everyone_in_the_preview(admin_client_):
    assert "@everyone" not in admin_client_.post(reverse(PREVIEW), {"template": "@everyone look"}).json()["text"]


def test_it_wants_the_template(admin_client_):
    answer = admin_client_.post(reverse(PREVIEW), {})
    assert answer.status_code == 400 and "template" in answer.json()["error"]
    assert admin_client_.get(reverse(PREVIEW)).status_code == 405


def test_it_refuses_the_preview_to_who_may_not_write_commands(db):
    assert staff("viewer", "view_customcommand").post(reverse(PREVIEW), {"template": "x"}).status_code == 403
    assert staff("adder", "add_customcommand").post(reverse(PREVIEW), {"template": "x"}).status_code == 200
    assert staff("changer", "change_customcommand").post(reverse(PREVIEW), {"template": "x"}).status_code == 200
    anonymous = Client().post(reverse(PREVIEW), {"template": "x"})
    assert anonymous.status_code == 302 and "/login/" in anonymous["Location"]


def test_it_shows_the_panel_and_its_script_under_the_csp(admin_client_, greet):
    page = admin_client_.get(change_url(greet))
    html = page.content.decode()
    assert 'id="command-preview"' in html and "Hi @Alice, first! " in html
    assert "/static/commands/command_preview.js" in html and "command_preview.css" in html
    assert "script-src 'self'" in page["Content-Security-Policy"]
    assert html.index("id_template") < html.index("command-preview")  # right below the reply


def test_it_shows_the_rendered_sample_and_the_restrictions_by_name_on_the_read_only_view(greet, directory):
    command_update(guild_id=GUILD, name="greet", allowed_role_ids=[VIP], allowed_channel_ids=[BOTS, 999])
    page = staff("viewer", "view_customcommand").get(change_url(greet))
    html = page.content.decode()
    assert page.status_code == 200
    assert "Hi @Alice, first! " in html and 'name="template"' not in html
    assert "only for: @VIP; only in: 999, #bots" in html


# -- restrictions on the form -----------------------------------------------------------
def test_it_offers_the_guilds_roles_and_channels_by_name(admin_client_, greet, directory):
    html = admin_client_.get(change_url(greet)).content.decode()
    assert f'<option value="{VIP}">@VIP</option>' in html and f'<option value="{BOTS}">#bots</option>' in html
    assert f'<option value="{GUILD}"' not in html  # @everyone is no restriction
    assert "Text channels" not in html  # a category holds no messages


def test_it_saves_picked_roles_and_channels_through_the_service(admin_client_, greet, directory):
    form = change_form(greet, allowed_role_ids=[str(VIP)], denied_role_ids=[str(MUTED)], allowed_channel_ids=[str(BOTS)])
    answer = admin_client_.post(change_url(greet), form)
    assert answer.status_code == 302, answer.content.decode()[:3000]
    stored = CustomCommand.objects.get(pk=greet.pk)
    assert (stored.allowed_role_ids, stored.denied_role_ids, stored.allowed_channel_ids) == ([VIP], [MUTED], [BOTS])


def test_it_takes_ids_when_the_directory_does_not_know_the_guild(admin_client_, greet):
    html = admin_client_.get(change_url(greet)).content.decode()
    assert "give ids, separated by commas" in html
    answer = admin_client_.post(change_url(greet), change_form(greet, allowed_role_ids=f"{VIP}, {MUTED}"))
    assert answer.status_code == 302
    assert CustomCommand.objects.get(pk=greet.pk).allowed_role_ids == sorted([VIP, MUTED])


@pytest.mark.parametrize(
    "fields, words",
    [
        ({"allowed_role_ids": "12abc"}, "is not a Discord id"),
        ({"allowed_role_ids": str(GUILD)}, "@everyone is every member"),
        ({"allowed_channel_ids": " ".join(str(i) for i in range(1, 27))}, "at most 25"),
    ],
)
def test_it_shows_a_bad_list_and_saves_nothing(admin_client_, greet, fields, words):
    answer = admin_client_.post(change_url(greet), change_form(greet, template="changed", **fields))
    assert answer.status_code == 200 and words in answer.content.decode()
    stored = CustomCommand.objects.get(pk=greet.pk)
    assert stored.template == greet.template and stored.allowed_role_ids == [] and stored.allowed_channel_ids == []


def test_it_creates_a_command_with_restrictions(admin_client_):
    form = {"guild_id": GUILD, "name": "vip", "template": "hi", "cooldown_seconds": 0, "cooldown_scope": "member"}
    form |= {"enabled": "on", "allowed_channel_ids": str(BOTS), "aliases-TOTAL_FORMS": 0, "aliases-INITIAL_FORMS": 0}
    answer = admin_client_.post(reverse("admin:commands_customcommand_add"), form)
    assert answer.status_code == 302, answer.content.decode()[:3000]
    assert CustomCommand.objects.get(guild_id=GUILD, name="vip").allowed_channel_ids == [BOTS]


def test_it_sets_the_refusal_in_the_guild_settings_form(admin_client_):
    row = GuildSettings.objects.create(guild_id=GUILD)
    form = {"prefix": "!!", "cookie_pair_cooldown_seconds": 60, "cookie_daily_cap": 50, "cookie_message_cap": 5}
    url = reverse("admin:commands_guildsettings_change", args=[row.pk])
    assert admin_client_.post(url, {**form, "command_refusal": "silent"}).status_code == 302
    assert GuildSettings.objects.get(pk=row.pk).command_refusal == "silent"
    assert admin_client_.post(url, form).status_code == 302  # a form without it keeps the choice
    assert GuildSettings.objects.get(pk=row.pk).command_refusal == "silent"
