"""/api/v1/guilds/{guild}/commands: list, get, create, update, delete, through the services."""

from __future__ import annotations

import pytest

from commands.models import CommandAlias, CustomCommand
from commands.services import command_alias_add, command_create
from tests.api.conftest import GUILD, OTHER_GUILD, patch, post

URL = f"/api/v1/guilds/{GUILD}/commands"
pytestmark = pytest.mark.django_db


@pytest.fixture
def hello(db):
    command = command_create(guild_id=GUILD, name="hello", template="Hi {user}!", author_id=123456789012345678)
    command_alias_add(guild_id=GUILD, name="hello", alias="hi")
    return command


def test_it_lists_a_guilds_commands_with_ids_as_strings(api, hello):
    command_create(guild_id=OTHER_GUILD, name="elsewhere", template="x", author_id=None)
    body = api.get(URL).json()
    assert body["next_cursor"] is None
    assert [item["name"] for item in body["items"]] == ["hello"]
    item = body["items"][0]
    assert item["guild_id"] == str(GUILD)
    assert item["author_id"] == "123456789012345678"
    assert item["aliases"] == ["hi"]
    assert item["template"] == "Hi {user}!"


def test_it_gets_a_command_by_name_or_alias(api, hello):
    assert api.get(f"{URL}/hello").json()["id"] == hello.pk
    assert api.get(f"{URL}/HI").json()["name"] == "hello"


def test_it_answers_404_for_a_missing_command(api, hello):
    response = api.get(f"{URL}/nope")
    assert response.status_code == 404
    assert response.json() == {"detail": "There is no command called `nope`."}


@pytest.mark.parametrize("guild", ["abc", "0", "-5", "99999999999999999999", "1.5"])
def test_it_answers_422_for_a_guild_id_that_is_not_a_discord_id(api, guild):
    assert api.get(f"/api/v1/guilds/{guild}/commands").status_code == 422


def test_it_creates_a_command(api):
    response = post(api, URL, {"name": "Greet", "template": "Hello {user.name}", "author_id": "987654321098765432"})
    assert response.status_code == 201, response.content
    assert response.json()["name"] == "greet"
    stored = CustomCommand.objects.get(guild_id=GUILD, name="greet")
    assert stored.author_id == 987654321098765432


def test_it_accepts_an_author_id_sent_as_a_number(api):
    response = post(api, URL, {"name": "n", "template": "x", "author_id": 42})
    assert response.status_code == 201
    assert response.json()["author_id"] == "42"


def test_it_answers_409_when_the_name_is_taken(api, hello):
    for name in ("hello", "hi"):
        response = post(api, URL, {"name": name, "template": "again"})
        assert response.status_code == 409
        assert "already exists" in response.json()["detail"]


@pytest.mark.parametrize(
    "body, words",
    [
        ({"name": "evil", "template": "{0.__class__}"}, "placeholder"),
        ({"name": "help", "template": "x"}, "built-in"),
        ({"name": "bad name!", "template": "x"}, "1 to 32"),
    ],
)
def test_it_answers_400_with_the_services_message(api, body, words):
    response = post(api, URL, body)
    assert response.status_code == 400
    assert words in response.json()["detail"]
    assert not CustomCommand.objects.filter(guild_id=GUILD).exists()


@pytest.mark.parametrize(
    "body",
    [
        {},
        {"name": "x"},
        {"name": "x" * 33, "template": "y"},
        {"name": "x", "template": "a\x00b"},
        {"name": "x", "template": "y", "author_id": "12ab"},
        {"name": "x", "template": "y", "author_id": True},
    ],
)
def test_it_answers_422_for_a_body_that_does_not_fit_the_schema(api, body):
    assert post(api, URL, body).status_code == 422


def test_it_answers_400_for_a_body_that_is_not_json(api):
    response = api.post(URL, "{not json", content_type="application/json")
    assert response.status_code == 400


def test_it_updates_the_reply_cooldown_and_enabled_flag(api, hello):
    response = patch(api, f"{URL}/hi", {"template": "Hey {user}", "editor_id": "5"})
    assert response.status_code == 200, response.content
    assert response.json()["template"] == "Hey {user}" and response.json()["editor_ids"] == ["5"]
    response = patch(api, f"{URL}/hello", {"cooldown_seconds": 30, "cooldown_scope": "channel"})
    assert (response.json()["cooldown_seconds"], response.json()["cooldown_scope"]) == (30, "channel")
    response = patch(api, f"{URL}/hello", {"enabled": False, "note": "spam"})
    assert (response.json()["enabled"], response.json()["note"]) == (False, "spam")
    stored = CustomCommand.objects.get(pk=hello.pk)
    assert (stored.template, stored.cooldown_seconds, stored.enabled) == ("Hey {user}", 30, False)
    assert patch(api, f"{URL}/hello", {"enabled": True}).json()["note"] == ""


def test_it_refuses_bad_updates(api, hello):
    assert patch(api, f"{URL}/hello", {"template": "{0.__class__}"}).status_code == 400
    assert patch(api, f"{URL}/hello", {"cooldown_seconds": -1}).status_code == 422
    assert patch(api, f"{URL}/hello", {"cooldown_scope": "planet"}).status_code == 422
    assert patch(api, f"{URL}/nope", {"enabled": False}).status_code == 404
    assert CustomCommand.objects.get(pk=hello.pk).template == "Hi {user}!"


def test_it_deletes_a_command_and_its_aliases(api, hello):
    assert api.delete(f"{URL}/hi").status_code == 204
    assert not CustomCommand.objects.filter(pk=hello.pk).exists()
    assert not CommandAlias.objects.filter(name="hi").exists()
    assert api.delete(f"{URL}/hello").status_code == 404


@pytest.mark.parametrize(
    "body, field",
    [
        ({"enabled": 0}, "enabled"),
        ({"enabled": "yes"}, "enabled"),
        ({"cooldown_seconds": True}, "cooldown_seconds"),
        ({"cooldown_seconds": 5.5}, "cooldown_seconds"),
        ({"cooldown_seconds": "5"}, "cooldown_seconds"),
    ],
)
def test_it_takes_booleans_and_numbers_only_as_themselves(api, body, field):
    command_create(guild_id=GUILD, name="hello", template="Hi", author_id=None)
    response = patch(api, f"/api/v1/guilds/{GUILD}/commands/hello", body)
    assert response.status_code == 422 and response.json()["detail"][0]["loc"][-1] == field
    command = CustomCommand.objects.get()
    assert (command.enabled, command.cooldown_seconds) == (True, 0)


def test_it_takes_a_whole_float_as_the_integer_it_is(api):
    command_create(guild_id=GUILD, name="hello", template="Hi", author_id=None)
    response = patch(api, f"/api/v1/guilds/{GUILD}/commands/hello", {"cooldown_seconds": 30.0})
    assert response.status_code == 200 and response.json()["cooldown_seconds"] == 30


@pytest.mark.parametrize("body", [[], [None, None], '"text"', "5"])  # JSON, but not objects
def test_it_wants_a_json_object_as_the_body(api, body):
    command_create(guild_id=GUILD, name="hello", template="Hi", author_id=None)
    response = patch(api, f"/api/v1/guilds/{GUILD}/commands/hello", body)
    assert response.status_code == 422
    assert CustomCommand.objects.get().template == "Hi"


def test_it_refuses_a_template_longer_than_the_limit_by_the_schema(api):
    response = post(api, f"/api/v1/guilds/{GUILD}/commands", {"name": "long", "template": "x" * 2001})
    assert response.status_code == 422 and "at most 2000 characters" in str(response.json()["detail"])
    assert not CustomCommand.objects.exists()
