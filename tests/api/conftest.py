"""API test set-up: staff users with tokens, and clients that send them.

``staff_user`` holds every permission the API's operations need; ``grant`` gives others.
"""

from __future__ import annotations

import pytest
from django.contrib.auth.models import Permission, User
from django.test import Client

from ops.api_tokens import api_token_create

GUILD = 100000000000000001
OTHER_GUILD = 100000000000000002
API_MODELS = (
    "commands.customcommand",
    "commands.cookiebalance",
    "commands.cookieledger",
    "commands.cookierole",
    "timers.timedrole",
    "timers.timersettings",
    "commands.guildsettings",
    "guilds.logentry",
)
ACTIONS = ("view", "add", "change", "delete")


def grant(user: User, *permissions: str) -> User:
    """Give ``user`` the permissions (``"app.codename"``) and return it fresh (Django caches permissions)."""
    for permission in permissions:
        app_label, codename = permission.split(".")
        user.user_permissions.add(Permission.objects.get(content_type__app_label=app_label, codename=codename))
    return User.objects.get(pk=user.pk)


def all_api_permissions() -> list[str]:
    """Every model permission of the models the API serves."""
    return [f"{model.split('.')[0]}.{action}_{model.split('.')[1]}" for model in API_MODELS for action in ACTIONS]


@pytest.fixture
def staff_user(db) -> User:
    user = User.objects.create_user("api-staff", password="pw-staff-123", is_staff=True)
    return grant(user, *all_api_permissions())


@pytest.fixture
def staff_key(staff_user) -> str:
    _, key = api_token_create(user=staff_user, name="tests", created_by=None)
    return key


def bearer(key: str) -> Client:
    """A client that sends ``key`` as its bearer token."""
    return Client(headers={"Authorization": f"Bearer {key}"})


@pytest.fixture
def api(staff_key) -> Client:
    """A client authenticated with a live staff token."""
    return bearer(staff_key)


def post(client: Client, url: str, data=None, **kwargs):
    """POST ``data`` as JSON."""
    return client.post(url, data if data is not None else {}, content_type="application/json", **kwargs)


def patch(client: Client, url: str, data, **kwargs):
    """PATCH ``data`` as JSON."""
    return client.patch(url, data, content_type="application/json", **kwargs)
