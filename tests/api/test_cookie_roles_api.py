"""/api/v1/guilds/{guild}/cookies/…: toplists by period, setting counts, cookie roles; and the worker that applies them."""

from __future__ import annotations

from datetime import UTC, datetime

import pytest
from django_q.models import OrmQ

from commands.models import CookieRole
from commands.services import cookie_give, cookie_role_add
from guilds.models import Member
from tests.api.conftest import GUILD, patch, post

BASE = f"/api/v1/guilds/{GUILD}/cookies"
pytestmark = pytest.mark.django_db
ALICE, BOB, CAROL = 200000000000000001, 200000000000000002, 200000000000000003
ROLE = 300000000000000009


def queued() -> list[tuple]:
    return [(row.task["func"], row.task["args"]) for row in OrmQ.objects.order_by("pk")]


def test_it_pages_each_period_without_members_who_left(api):
    for giver in (1, 2):
        cookie_give(guild_id=GUILD, giver_id=giver, receiver_id=ALICE)
    cookie_give(guild_id=GUILD, giver_id=1, receiver_id=BOB)
    cookie_give(guild_id=GUILD, giver_id=1, receiver_id=CAROL)
    Member.objects.create(guild_id=GUILD, user_id=CAROL, username="carol", left_at=datetime.now(UTC))
    body = api.get(f"{BASE}/leaderboard", {"period": "7d"}).json()
    assert body["period"] == "7d"
    assert [(r["member_id"], r["balance"], r["rank"]) for r in body["items"]] == [(str(ALICE), 2, 1), (str(BOB), 1, 2)]
    assert api.get(f"{BASE}/leaderboard", {"period": "30d"}).json()["items"][0]["member_id"] == str(ALICE)
    assert api.get(f"{BASE}/leaderboard").json()["period"] == "all"
    assert api.get(f"{BASE}/leaderboard", {"period": "1y"}).status_code == 422


def test_setting_a_count_queues_the_cookie_roles_once_committed(api, django_capture_on_commit_callbacks):
    with django_capture_on_commit_callbacks(execute=True):
        first = api.put(f"{BASE}/balances/{ALICE}", {"balance": 12}, content_type="application/json")
    assert first.json() == {"member_id": str(ALICE), "balance": 12, "delta": 12, "roles_synced": False}
    assert queued() == []  # no cookie roles in this guild: nothing to do
    cookie_role_add(guild_id=GUILD, threshold=10, role_id=ROLE, actor_id=None)
    with django_capture_on_commit_callbacks(execute=True):
        second = api.put(f"{BASE}/balances/{ALICE}", {"balance": 0}, content_type="application/json")
    assert second.json()["roles_synced"] is True
    assert queued() == [("bots.cookie_roles.cookie_roles_apply", (GUILD, [ALICE]))]


@pytest.mark.parametrize("body", [{"balance": "12"}, {"balance": 1.5}, {"balance": True}, {"balance": 10**16}, {}])
def test_it_refuses_a_bad_count_and_changes_nothing(api, body):
    response = api.put(f"{BASE}/balances/{ALICE}", body, content_type="application/json")
    assert response.status_code in (400, 422)
    assert api.get(f"{BASE}/balances/{ALICE}").json()["balance"] == 0


def test_it_adds_moves_lists_and_removes_cookie_roles(api):
    created = post(api, f"{BASE}/roles", {"threshold": 10, "role_id": str(ROLE)})
    assert created.status_code == 201 and created.json() == {"role_id": str(ROLE), "threshold": 10, "added_by_id": None}
    moved = post(api, f"{BASE}/roles", {"threshold": 20, "role_id": str(ROLE)})
    assert moved.status_code == 200 and moved.json()["threshold"] == 20
    assert api.get(f"{BASE}/roles").json() == [{"role_id": str(ROLE), "threshold": 20, "added_by_id": None}]
    for bad in ({"threshold": 0, "role_id": str(ROLE)}, {"threshold": 5, "role_id": str(GUILD)}, {"threshold": 5}):
        assert post(api, f"{BASE}/roles", bad).status_code in (400, 422)
    assert api.delete(f"{BASE}/roles/{ROLE}").status_code == 204
    missing = api.delete(f"{BASE}/roles/{ROLE}")
    assert missing.status_code == 404 and "not a cookie role" in missing.json()["detail"]
    assert not CookieRole.objects.exists()
    assert patch(api, f"{BASE}/roles/{ROLE}", {}).status_code == 405


def test_adding_removing_and_the_mode_through_the_api_queue_the_guild_wide_sync(api, django_capture_on_commit_callbacks):
    with django_capture_on_commit_callbacks(execute=True):
        assert post(api, f"{BASE}/roles", {"threshold": 10, "role_id": str(ROLE)}).status_code == 201
    with django_capture_on_commit_callbacks(execute=True):
        assert patch(api, f"/api/v1/guilds/{GUILD}/settings", {"cookie_roles_keep_all": False}).status_code == 200
    with django_capture_on_commit_callbacks(execute=True):
        assert api.delete(f"{BASE}/roles/{ROLE}").status_code == 204
    resync = "bots.cookie_roles.cookie_roles_resync"
    assert queued() == [(resync, (GUILD, 1, [], None)), (resync, (GUILD, 2, [], None)), (resync, (GUILD, 3, [[10, ROLE]], None))]
