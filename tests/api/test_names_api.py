"""/api/v1 shows names next to the ids: timers, balances, the leaderboard and the ledger."""

from __future__ import annotations

from datetime import timedelta

import pytest
from django.contrib.auth.models import User
from django.db import connection
from django.test.utils import CaptureQueriesContext

from commands.services import cookie_give
from guilds.services.directory import ChannelSeen, DirectoryBatch, GuildSeen, MemberLeft, MemberSeen, RoleSeen, directory_record
from ops.api_tokens import api_token_create
from tests.api.conftest import GUILD, bearer, grant, post
from timers.services import timer_set

pytestmark = pytest.mark.django_db
ALICE, BOB, CAROL = 200000000000000001, 200000000000000002, 200000000000000003
BOOSTER, CHANNEL = 300000000000000001, 500000000000000001


@pytest.fixture
def named():
    directory_record(
        batch=DirectoryBatch(
            guilds=[GuildSeen(GUILD, "My Server")],
            roles=[RoleSeen(GUILD, BOOSTER, "Booster")],
            channels=[ChannelSeen(GUILD, CHANNEL, "general")],
            members=[MemberSeen(GUILD, ALICE, "alice", "Alice"), MemberSeen(GUILD, BOB, "bob", nick="Bobby")],
        )
    )
    directory_record(batch=DirectoryBatch(departures=[MemberLeft(GUILD, BOB, "bob")]))


def test_timers_carry_the_names_of_their_guild_member_role_and_channel(api, named):
    timer_set(guild_id=GUILD, member_id=ALICE, role_id=BOOSTER, duration=timedelta(hours=1), actor_id=None, channel_id=CHANNEL)
    item = api.get("/api/v1/timers").json()["items"][0]
    assert (item["guild_name"], item["member_name"], item["role_name"], item["warn_channel_name"]) == (
        "My Server",
        "Alice (@alice)",
        "@Booster",
        "#general",
    )
    assert item["member_id"] == str(ALICE) and item["role_id"] == str(BOOSTER)  # the ids stay as they were


def test_a_timer_nobody_named_has_null_names_and_a_change_answers_with_names(api, named):
    response = post(api, "/api/v1/timers", {"guild_id": GUILD, "member_id": CAROL, "role_id": BOOSTER, "duration": "1h"})
    data = response.json()
    assert response.status_code == 201 and data["member_name"] is None and data["role_name"] == "@Booster"
    assert api.get(f"/api/v1/timers/{data['id']}").json()["guild_name"] == "My Server"


def test_a_page_of_timers_costs_one_query_for_names(api, named):
    for n in range(20):
        timer_set(guild_id=GUILD, member_id=ALICE + 10 + n, role_id=BOOSTER, duration=timedelta(hours=1), actor_id=None)
    with CaptureQueriesContext(connection) as queries:
        assert len(api.get("/api/v1/timers", {"limit": 20}).json()["items"]) == 20
    assert sum(1 for q in queries.captured_queries if "guilds_" in q["sql"]) == 1


def test_cookies_carry_member_names(api, named):
    cookie_give(guild_id=GUILD, giver_id=ALICE, receiver_id=CAROL)
    cookie_give(guild_id=GUILD, giver_id=CAROL, receiver_id=ALICE)
    balances = api.get(f"/api/v1/guilds/{GUILD}/cookies/balances").json()["items"]
    assert {b["member_id"]: b["member_name"] for b in balances} == {str(ALICE): "Alice (@alice)", str(CAROL): None}
    ledger = api.get(f"/api/v1/guilds/{GUILD}/cookies/ledger").json()["items"]
    assert [(r["giver_name"], r["receiver_name"]) for r in ledger] == [(None, "Alice (@alice)"), ("Alice (@alice)", None)]
    top = api.get(f"/api/v1/guilds/{GUILD}/cookies/leaderboard").json()["items"]
    assert {r["member_id"]: r["member_name"] for r in top}[str(ALICE)] == "Alice (@alice)"
    one = api.get(f"/api/v1/guilds/{GUILD}/cookies/balances/{ALICE}").json()
    assert one["member_name"] == "Alice (@alice)" and one["balance"] == 1


def test_a_member_who_left_is_named_as_gone(api, named):
    cookie_give(guild_id=GUILD, giver_id=ALICE, receiver_id=BOB)
    item = api.get(f"/api/v1/guilds/{GUILD}/cookies/balances").json()["items"][0]
    assert item["member_name"] == "bob (@bob), left"


def test_names_need_the_same_permission_as_the_ids(named):
    user = grant(User.objects.create_user("reader", is_staff=True), "commands.view_cookiebalance")
    client = bearer(api_token_create(user=user, name="reader", created_by=None)[1])
    assert client.get("/api/v1/timers").status_code == 403
    assert client.get(f"/api/v1/guilds/{GUILD}/cookies/balances").status_code == 200


def test_the_schema_documents_the_name_fields(api):
    schema = api.get("/api/openapi.json").json()["components"]["schemas"]
    assert "Alice (@alice)" in schema["TimerOut"]["properties"]["member_name"]["description"]
    assert {"guild_name", "role_name", "warn_channel_name"} <= set(schema["TimerOut"]["properties"])
    assert {"giver_name", "receiver_name"} <= set(schema["LedgerOut"]["properties"])
