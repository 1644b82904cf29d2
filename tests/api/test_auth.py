"""Who may call the API: staff with a live token (not expired; read-only ones only read), or a staff session (with CSRF for writes)."""

from __future__ import annotations

from datetime import timedelta

import pytest
from django.contrib.auth.models import User
from django.db import connection
from django.test import Client
from django.utils import timezone

from commands.models import CustomCommand
from ops.api_tokens import ApiTokenError, api_key_hash, api_token_check, api_token_create, api_token_revoke
from ops.models import ApiToken
from tests.api.conftest import GUILD, bearer, post
from timers.models import TimedRole

URL = f"/api/v1/guilds/{GUILD}/commands"
pytestmark = pytest.mark.django_db


def test_it_answers_401_without_a_token():
    response = Client().get(URL)
    assert response.status_code == 401
    assert response.json()["detail"].startswith("Authentication required")
    assert response["WWW-Authenticate"].startswith("Bearer")


@pytest.mark.parametrize(
    "header", ["Bearer gh_not-a-real-key", "Bearer ", "Bearer", "Basic dXNlcjpwdw==", "gh_abc", "Bearer " + "x" * 5000]
)
def test_it_answers_401_for_a_bad_token(staff_key, header):
    response = Client(headers={"Authorization": header}).get(URL)
    assert response.status_code == 401


def test_it_accepts_a_live_staff_token(api):
    response = api.get(URL)
    assert response.status_code == 200
    assert response.json() == {"items": [], "next_cursor": None}


def test_it_answers_401_for_a_revoked_token(staff_user):
    token, key = api_token_create(user=staff_user, name="old", created_by=None)
    assert bearer(key).get(URL).status_code == 200
    assert api_token_revoke(token=token) is True
    assert api_token_revoke(token=token) is False
    assert bearer(key).get(URL).status_code == 401


def test_it_refuses_the_token_of_a_user_who_is_no_longer_staff(staff_user, staff_key):
    staff_user.is_staff = False
    staff_user.save()
    assert bearer(staff_key).get(URL).status_code == 401


def test_it_refuses_the_token_of_a_deactivated_user(staff_user, staff_key):
    staff_user.is_active = False
    staff_user.save()
    assert bearer(staff_key).get(URL).status_code == 401


def test_it_will_not_make_a_token_for_a_member_who_is_not_staff():
    member = User.objects.create_user("member", password="pw-member-123")
    with pytest.raises(Exception, match="staff"):
        api_token_create(user=member, name="nope", created_by=None)
    assert not ApiToken.objects.exists()


def test_it_stores_only_the_hash_of_the_key(staff_user):
    token, key = api_token_create(user=staff_user, name="ci", created_by=None)
    assert key.startswith("gh_") and len(key) > 40
    token.refresh_from_db()
    assert token.key_hash == api_key_hash(key) and len(token.key_hash) == 64
    assert key.startswith(token.prefix) and len(token.prefix) < 12
    with connection.cursor() as cursor:
        cursor.execute(f"SELECT * FROM {ApiToken._meta.db_table}")
        stored = " ".join(str(value) for row in cursor.fetchall() for value in row)
    assert key not in stored


def test_it_records_the_last_use_at_most_once_a_minute(staff_user):
    token, key = api_token_create(user=staff_user, name="ci", created_by=None)
    assert api_token_check(key).user == staff_user
    token.refresh_from_db()
    first = token.last_used_at
    assert first is not None
    api_token_check(key)
    token.refresh_from_db()
    assert token.last_used_at == first
    ApiToken.objects.filter(pk=token.pk).update(last_used_at=timezone.now() - timedelta(minutes=2))
    api_token_check(key)
    token.refresh_from_db()
    assert token.last_used_at > first - timedelta(seconds=1)


def test_it_accepts_a_staff_session_for_reads_and_writes_with_csrf(staff_user):
    client = Client(enforce_csrf_checks=True)
    client.force_login(staff_user)
    assert client.get(URL).status_code == 200
    refused = post(client, URL, {"name": "hello", "template": "Hi"})
    assert refused.status_code == 403
    assert "CSRF" in refused.json()["detail"]
    client.get("/admin/")  # sets the CSRF cookie
    token = client.cookies["csrftoken"].value
    created = post(client, URL, {"name": "hello", "template": "Hi"}, headers={"X-CSRFToken": token})
    assert created.status_code == 201, created.content


def test_it_refuses_a_session_that_is_not_staff():
    client = Client()
    client.force_login(User.objects.create_user("member", password="pw-member-123"))
    assert client.get(URL).status_code == 401


def test_it_keeps_the_docs_and_schema_for_staff(staff_key):
    assert Client().get("/api/openapi.json").status_code == 302  # to the login page
    assert Client().get("/api/docs").status_code == 302
    schema = Client().get("/api/openapi.json", headers={"Authorization": f"Bearer {staff_key}"})
    assert schema.status_code == 200
    assert "/api/v1/guilds/{guild_id}/commands" in schema.json()["paths"]
    assert "ApiTokenAuth" in schema.json()["components"]["securitySchemes"]
    staff = Client()
    staff.force_login(User.objects.create_user("docs-reader", password="pw-docs-123", is_staff=True))
    docs = staff.get("/api/docs")
    assert docs.status_code == 200
    assert b"swagger-ui" in docs.content


def test_it_gives_a_token_90_days_by_default(staff_user):
    token, _ = api_token_create(user=staff_user, name="ci", created_by=None)
    left = token.expires_at - timezone.now()
    assert timedelta(days=89, hours=23) < left <= timedelta(days=90)
    assert token.read_only is False


def test_it_answers_401_saying_the_token_expired(staff_user):
    token, key = api_token_create(user=staff_user, name="old", created_by=None, lifetime=timedelta(days=1))
    assert bearer(key).get(URL).status_code == 200
    ApiToken.objects.filter(pk=token.pk).update(expires_at=timezone.now() - timedelta(seconds=1))
    response = bearer(key).get(URL)
    assert response.status_code == 401
    assert response.json()["detail"].startswith(f"The API token {token.prefix}… expired on ")
    assert response["WWW-Authenticate"].startswith("Bearer")
    assert post(bearer(key), URL, {"name": "late", "template": "Hi"}).status_code == 401
    assert not CustomCommand.objects.exists()
    # Nor does it open the docs.
    assert Client().get("/api/openapi.json", headers={"Authorization": f"Bearer {key}"}).status_code == 302


@pytest.mark.parametrize("lifetime", [timedelta(0), timedelta(hours=23), timedelta(days=731), 90])
def test_it_refuses_a_lifetime_out_of_bounds(staff_user, lifetime):
    with pytest.raises(ApiTokenError, match="1 to 730 days"):
        api_token_create(user=staff_user, name="odd", created_by=None, lifetime=lifetime)
    assert not ApiToken.objects.exists()


def test_it_lets_a_read_only_token_read_but_not_write(staff_user, django_capture_on_commit_callbacks):
    token, key = api_token_create(user=staff_user, name="grafana", created_by=None, read_only=True)
    client = bearer(key)
    assert client.get(URL).status_code == 200
    assert client.get("/api/v1/timers").status_code == 200
    for response in (
        post(client, URL, {"name": "hello", "template": "Hi"}),
        client.delete(f"{URL}/hello"),
        post(client, "/api/v1/timers", {"guild_id": GUILD, "member_id": 2, "role_id": 3, "duration": "1h"}),
    ):
        assert response.status_code == 403
        assert (
            response.json()["detail"]
            == f"The API token {token.prefix}… is read-only: it may only read (GET), not "
            + (response.request["REQUEST_METHOD"])
            + "."
        )
    assert not CustomCommand.objects.exists() and not TimedRole.objects.exists()


def test_it_refuses_read_only_as_anything_but_a_boolean(staff_user):
    with pytest.raises(ApiTokenError):
        api_token_create(user=staff_user, name="odd", created_by=None, read_only=1)
