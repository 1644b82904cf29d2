"""API tokens in the admin: superusers only; the key is shown once on creation, never again."""

from __future__ import annotations

import re
from datetime import timedelta

import pytest
from django.contrib.auth.models import User
from django.urls import reverse
from django.utils import timezone

from ops.api_tokens import api_key_hash, api_token_check, api_token_create
from ops.models import ApiToken

ADD = reverse("admin:ops_apitoken_add")
LIST = reverse("admin:ops_apitoken_changelist")
pytestmark = pytest.mark.django_db


@pytest.fixture
def superuser_client(client):
    client.force_login(User.objects.create_user("root", password="pw-root-123", is_staff=True, is_superuser=True))
    return client


@pytest.fixture
def staff(db):
    return User.objects.create_user("ops", password="pw-ops-123", is_staff=True)


def test_it_shows_the_new_key_once(superuser_client, staff):
    assert superuser_client.get(ADD).status_code == 200
    response = superuser_client.post(ADD, {"user": staff.pk, "name": "grafana", "lifetime_days": 90})
    assert response.status_code == 200
    assert "no-store" in response["Cache-Control"]
    key = re.search(r'id="api-token-key"[^>]*>(gh_[A-Za-z0-9_-]+)<', response.content.decode()).group(1)
    token = ApiToken.objects.get()
    assert (token.user, token.name, token.created_by.username) == (staff, "grafana", "root")
    assert token.key_hash == api_key_hash(key)
    assert api_token_check(key).user == staff
    for page in (LIST, reverse("admin:ops_apitoken_change", args=[token.pk])):
        shown = superuser_client.get(page)
        assert shown.status_code == 200
        assert key not in shown.content.decode() and token.prefix in shown.content.decode()


def test_it_offers_only_active_staff_users(superuser_client, staff):
    member = User.objects.create_user("member", password="pw-member-123")
    response = superuser_client.post(ADD, {"user": member.pk, "name": "nope", "lifetime_days": 90})
    assert response.status_code == 200 and "Select a valid choice" in response.content.decode()
    assert not ApiToken.objects.exists()


def test_it_revokes_tokens_with_the_admin_action(superuser_client, staff):
    token, key = api_token_create(user=staff, name="old", created_by=None)
    response = superuser_client.post(LIST, {"action": "revoke", "_selected_action": [token.pk]}, follow=True)
    assert response.status_code == 200 and "Revoked 1 token" in response.content.decode()
    token.refresh_from_db()
    assert token.revoked_at is not None
    assert api_token_check(key) is None


def test_it_keeps_tokens_from_staff_who_are_not_superusers(client, staff):
    token, _ = api_token_create(user=staff, name="mine", created_by=None)
    client.force_login(staff)
    for url in (LIST, ADD, reverse("admin:ops_apitoken_change", args=[token.pk])):
        assert client.get(url).status_code == 403, url
    assert client.post(ADD, {"user": staff.pk, "name": "sneaky"}).status_code == 403
    assert ApiToken.objects.count() == 1
    assert "API tokens" not in client.get(reverse("admin:index")).content.decode()


def test_it_lets_no_one_edit_or_delete_a_token(superuser_client, staff):
    token, _ = api_token_create(user=staff, name="fixed", created_by=None)
    assert superuser_client.post(reverse("admin:ops_apitoken_change", args=[token.pk]), {"name": "renamed"}).status_code == 403
    assert superuser_client.post(reverse("admin:ops_apitoken_delete", args=[token.pk]), {"post": "yes"}).status_code == 403
    assert ApiToken.objects.get().name == "fixed"


def test_it_sets_the_lifetime_and_scope_and_shows_them(superuser_client, staff):
    add_form = superuser_client.get(ADD).content.decode()
    assert 'name="lifetime_days"' in add_form and 'value="90"' in add_form and 'name="read_only"' in add_form
    response = superuser_client.post(ADD, {"user": staff.pk, "name": "report", "lifetime_days": 7, "read_only": "on"})
    assert response.status_code == 200
    token = ApiToken.objects.get()
    assert token.read_only is True
    assert timedelta(days=6, hours=23) < token.expires_at - timezone.now() <= timedelta(days=7)
    assert f"{token.expires_at:%Y-%m-%d %H:%M}" in response.content.decode() and "for reads only" in response.content.decode()
    listing = superuser_client.get(LIST).content.decode()
    assert "column-expires_at" in listing and "column-read_only" in listing
    detail = superuser_client.get(reverse("admin:ops_apitoken_change", args=[token.pk])).content.decode()
    assert "Expires at" in detail and "Read only" in detail


@pytest.mark.parametrize("days", [0, 731, "soon"])
def test_it_refuses_a_lifetime_out_of_bounds_in_the_form(superuser_client, staff, days):
    response = superuser_client.post(ADD, {"user": staff.pk, "name": "odd", "lifetime_days": days})
    assert response.status_code == 200 and "errorlist" in response.content.decode()
    assert not ApiToken.objects.exists()
