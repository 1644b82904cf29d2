"""Changes made on the dashboard or through the API name their web user in the activity log."""

from __future__ import annotations

import pytest
from django.contrib.auth.models import User

from commands.models import CookieBalance
from commands.services import command_create, cookie_set
from guilds.models import LogEntry
from tests.api.conftest import bearer, post
from tests.api.conftest import staff_key as staff_key
from tests.api.conftest import staff_user as staff_user

G = 100000000000000001
pytestmark = pytest.mark.django_db


def texts() -> list[str]:
    return list(LogEntry.objects.filter(guild_id=G).order_by("pk").values_list("text", flat=True))


def test_it_names_the_token_s_user_for_a_change_made_through_the_api(staff_key):
    answer = post(bearer(staff_key), f"/api/v1/guilds/{G}/commands", {"name": "hello", "template": "hi"})
    assert answer.status_code == 201, answer.content
    assert texts() == ["Command `hello` created by `api-staff` through the API"]


def test_it_names_the_admin_for_a_change_made_on_the_dashboard(client):
    admin = User.objects.create_superuser("ops_lead", password="pw-admin-123")
    client.force_login(admin)
    cookie_set(guild_id=G, member_id=500, balance=7, actor_id=None)
    row = CookieBalance.objects.get(guild_id=G, member_id=500)
    answer = client.post("/admin/commands/cookiebalance/", {"action": "reset_to_zero", "_selected_action": [row.pk]}, follow=True)
    assert answer.status_code == 200
    assert texts()[-1] == "<@500>'s cookies reset to 0 (was 7) by `ops_lead` on the dashboard"


def test_it_names_nobody_for_the_bot_s_own_changes_or_a_member_s():
    command_create(guild_id=G, name="quiet", template="x", author_id=None)
    command_create(guild_id=G, name="loud", template="x", author_id=42)
    assert texts() == ["Command `quiet` created", "Command `loud` created by <@42>"]
