"""/api/v1/guilds/{guild}/commands: a command's allowed roles, denied roles and allowed channels."""

from __future__ import annotations

import pytest
from django.contrib.auth.models import User

from commands.models import CustomCommand
from commands.restrictions import MAX_RESTRICTION_IDS
from commands.services import command_create
from ops.api_tokens import api_token_create
from tests.api.conftest import GUILD, bearer, grant, patch, post

URL = f"/api/v1/guilds/{GUILD}/commands"
VIP, MUTED, BOTS = "111111111111111111", "333333333333333333", "555555555555555555"
pytestmark = pytest.mark.django_db


@pytest.fixture
def hello(db) -> CustomCommand:
    return command_create(guild_id=GUILD, name="hello", template="Hi {user}!", author_id=None)


def client_with(username: str, *permissions: str):
    user = grant(User.objects.create_user(username, password="pw-limited-123", is_staff=True), *permissions)
    _, key = api_token_create(user=user, name="limited", created_by=None)
    return bearer(key)


def stored(command: CustomCommand) -> tuple[list[int], list[int], list[int]]:
    row = CustomCommand.objects.get(pk=command.pk)
    return row.allowed_role_ids, row.denied_role_ids, row.allowed_channel_ids


def test_it_sets_and_shows_restrictions_with_ids_as_strings(api, hello):
    body = {"allowed_role_ids": [VIP], "denied_role_ids": [int(MUTED)], "allowed_channel_ids": [BOTS]}
    response = patch(api, f"{URL}/hello", body)
    assert response.status_code == 200, response.content
    shown = response.json()
    assert (shown["allowed_role_ids"], shown["denied_role_ids"], shown["allowed_channel_ids"]) == ([VIP], [MUTED], [BOTS])
    assert stored(hello) == ([int(VIP)], [int(MUTED)], [int(BOTS)])
    assert api.get(f"{URL}/hello").json()["denied_role_ids"] == [MUTED]


def test_it_changes_only_the_lists_sent_and_lifts_one_with_an_empty_list(api, hello):
    patch(api, f"{URL}/hello", {"allowed_role_ids": [VIP], "allowed_channel_ids": [BOTS]})
    response = patch(api, f"{URL}/hello", {"allowed_channel_ids": []})
    assert response.status_code == 200
    assert stored(hello) == ([int(VIP)], [], [])


def test_it_creates_a_command_with_restrictions(api):
    response = post(api, URL, {"name": "vip", "template": "hi", "allowed_role_ids": [VIP]})
    assert response.status_code == 201, response.content
    assert response.json()["allowed_role_ids"] == [VIP]


def test_it_answers_403_without_the_change_permission_and_changes_nothing(hello):
    reader = client_with("reader", "commands.view_customcommand", "commands.add_customcommand")
    response = patch(reader, f"{URL}/hello", {"allowed_role_ids": [VIP]})
    assert response.status_code == 403
    assert stored(hello) == ([], [], [])
    writer = client_with("writer", "commands.change_customcommand")
    assert patch(writer, f"{URL}/hello", {"allowed_role_ids": [VIP]}).status_code == 200
    assert stored(hello) == ([int(VIP)], [], [])


@pytest.mark.parametrize(
    "body",
    [
        {"allowed_role_ids": ["abc"]},
        {"allowed_role_ids": [0]},
        {"denied_role_ids": [True]},
        {"allowed_channel_ids": "555"},
        {"allowed_channel_ids": [str(2**63)]},
        {"allowed_role_ids": [str(i) for i in range(1, MAX_RESTRICTION_IDS + 2)]},
    ],
)
def test_it_answers_422_for_a_list_that_is_not_ids(api, hello, body):
    response = patch(api, f"{URL}/hello", {**body, "template": "changed"})
    assert response.status_code == 422, response.content
    assert CustomCommand.objects.get(pk=hello.pk).template == "Hi {user}!" and stored(hello) == ([], [], [])


def test_it_answers_400_for_the_everyone_role(api, hello):
    response = patch(api, f"{URL}/hello", {"allowed_role_ids": [str(GUILD)]})
    assert response.status_code == 400
    assert "@everyone is every member" in response.json()["detail"]
    assert stored(hello) == ([], [], [])


def test_it_documents_the_fields_in_the_schema(api):
    schema = api.get("/api/openapi.json").json()["components"]["schemas"]
    assert {"allowed_role_ids", "denied_role_ids", "allowed_channel_ids"} <= set(schema["CommandPatch"]["properties"])
    assert "allowed_channel_ids" in schema["CommandOut"]["required"]
