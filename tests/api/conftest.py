"""API test set-up: staff users with tokens, and clients that send them."""

from __future__ import annotations

import pytest
from django.contrib.auth.models import User
from django.test import Client

from ops.api_tokens import api_token_create

GUILD = 100000000000000001
OTHER_GUILD = 100000000000000002


@pytest.fixture
def staff_user(db) -> User:
    return User.objects.create_user("api-staff", password="pw-staff-123", is_staff=True)


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
