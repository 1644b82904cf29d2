"""/api/v1/guilds/{guild}/cookies/…: balances, one member's standing, ledger, leaderboard."""

from __future__ import annotations

from datetime import timedelta

import pytest
from django.utils import timezone

from commands.models import CookieBalance, CookieLedger, LedgerReason
from commands.services import cookie_give, cookie_set
from tests.api.conftest import GUILD, OTHER_GUILD

BASE = f"/api/v1/guilds/{GUILD}/cookies"
pytestmark = pytest.mark.django_db
ALICE, BOB, CAROL = 200000000000000001, 200000000000000002, 200000000000000003


@pytest.fixture
def counts(db):
    cookie_set(guild_id=GUILD, member_id=ALICE, balance=5, actor_id=None)
    cookie_set(guild_id=GUILD, member_id=BOB, balance=9, actor_id=None)
    cookie_set(guild_id=GUILD, member_id=CAROL, balance=5, actor_id=None)
    cookie_set(guild_id=OTHER_GUILD, member_id=ALICE, balance=100, actor_id=None)


def test_it_lists_balances_in_leaderboard_order(api, counts):
    body = api.get(f"{BASE}/balances").json()
    assert body == {
        "items": [
            {"member_id": str(BOB), "balance": 9, "member_name": None},  # names: tests/api/test_names_api.py
            {"member_id": str(ALICE), "balance": 5, "member_name": None},
            {"member_id": str(CAROL), "balance": 5, "member_name": None},
        ],
        "next_cursor": None,
    }


def test_it_shows_one_members_standing(api, counts):
    assert api.get(f"{BASE}/balances/{CAROL}").json() == {"member_id": str(CAROL), "balance": 5, "rank": 2, "member_name": None}
    assert api.get(f"{BASE}/balances/{BOB}").json()["rank"] == 1
    assert api.get(f"{BASE}/balances/42").json() == {"member_id": "42", "balance": 0, "rank": None, "member_name": None}
    assert api.get(f"{BASE}/balances/nobody").status_code == 422


def test_it_shows_a_leaderboard_page(api, counts):
    body = api.get(f"{BASE}/leaderboard", {"page": 1}).json()
    assert body["page"] == 1
    assert [(row["member_id"], row["rank"]) for row in body["items"]] == [(str(BOB), 1), (str(ALICE), 2), (str(CAROL), 2)]
    assert api.get(f"{BASE}/leaderboard", {"page": 2}).json()["items"] == []
    assert api.get(f"{BASE}/leaderboard", {"page": 0}).status_code == 422


def test_it_lists_the_ledger_newest_first(api):
    cookie_give(guild_id=GUILD, giver_id=ALICE, receiver_id=BOB)
    cookie_give(guild_id=GUILD, giver_id=CAROL, receiver_id=BOB, delta=-1)
    cookie_give(guild_id=GUILD, giver_id=BOB, receiver_id=ALICE)
    items = api.get(f"{BASE}/ledger").json()["items"]
    assert [(row["giver_id"], row["receiver_id"], row["delta"]) for row in items] == [
        (str(BOB), str(ALICE), 1),
        (str(CAROL), str(BOB), -1),
        (str(ALICE), str(BOB), 1),
    ]
    assert items[0]["reason"] == "give" and items[0]["message_id"] is None
    only_bob = api.get(f"{BASE}/ledger", {"member_id": str(BOB)}).json()["items"]
    assert [row["delta"] for row in only_bob] == [-1, 1]


def test_it_walks_the_ledger_in_pages_when_times_tie(api):
    now = timezone.now()
    CookieLedger.objects.bulk_create(
        CookieLedger(
            guild_id=GUILD,
            giver_id=1,
            receiver_id=ALICE,
            delta=1,
            reason=LedgerReason.GIVE,
            created_at=now - timedelta(seconds=i // 3),
        )  # three rows per second: ties on created_at
        for i in range(30)
    )
    expected = list(CookieLedger.objects.order_by("-created_at", "-pk").values_list("pk", flat=True))
    seen, cursor = [], None
    while True:
        body = api.get(f"{BASE}/ledger", {"limit": 7, **({"cursor": cursor} if cursor else {})}).json()
        seen += [row["id"] for row in body["items"]]
        cursor = body["next_cursor"]
        if cursor is None:
            break
    assert seen == expected


def test_it_walks_balances_with_ties_in_pages(api):
    CookieBalance.objects.bulk_create(CookieBalance(guild_id=GUILD, member_id=m, balance=m % 4) for m in range(1, 121))
    expected = [str(m) for m in CookieBalance.objects.order_by("-balance", "member_id").values_list("member_id", flat=True)]
    seen, cursor, pages = [], None, 0
    while True:
        body = api.get(f"{BASE}/balances", {"limit": 50, **({"cursor": cursor} if cursor else {})}).json()
        seen += [row["member_id"] for row in body["items"]]
        pages += 1
        cursor = body["next_cursor"]
        if cursor is None:
            break
    assert pages == 3 and seen == expected
