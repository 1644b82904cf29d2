"""Cursor pagination: every row once, in order; bad cursors refused; no OFFSET, no COUNT(*)."""

from __future__ import annotations

import pytest
from django.db import connection
from django.test.utils import CaptureQueriesContext

from commands.models import CookieBalance, CustomCommand
from config.pagination import CursorInvalid, cursor_encode, page_query, paginate
from tests.api.conftest import GUILD

URL = f"/api/v1/guilds/{GUILD}/commands"
pytestmark = pytest.mark.django_db


@pytest.fixture
def many_commands(db):
    CustomCommand.objects.bulk_create(
        CustomCommand(guild_id=GUILD, name=f"cmd-{i:03d}", template=f"reply {i}") for i in reversed(range(120))
    )
    CustomCommand.objects.create(guild_id=GUILD + 1, name="cmd-050a", template="another guild")


def _walk(api, url, limit=50):
    pages, cursor = [], None
    while True:
        response = api.get(url, {"limit": limit, **({"cursor": cursor} if cursor else {})})
        assert response.status_code == 200, response.content
        pages.append([item["name"] for item in response.json()["items"]])
        cursor = response.json()["next_cursor"]
        if cursor is None:
            return pages


def test_it_walks_every_row_exactly_once_in_order(api, many_commands):
    pages = _walk(api, URL)
    assert [len(page) for page in pages] == [50, 50, 20]
    assert [name for page in pages for name in page] == [f"cmd-{i:03d}" for i in range(120)]


def test_it_ends_without_a_cursor_when_the_last_page_is_full(api, many_commands):
    pages = _walk(api, URL, limit=60)
    assert [len(page) for page in pages] == [60, 60]


def test_it_reads_with_neither_offset_nor_count(api, many_commands):
    first = api.get(URL, {"limit": 50}).json()
    with CaptureQueriesContext(connection) as queries:
        assert api.get(URL, {"limit": 50, "cursor": first["next_cursor"]}).status_code == 200
    page_sql = [q["sql"].upper() for q in queries.captured_queries if "CUSTOMCOMMAND" in q["sql"].upper()]
    assert page_sql, queries.captured_queries
    for sql in page_sql:
        assert "OFFSET" not in sql and "COUNT(" not in sql, sql
    assert any("LIMIT 51" in sql for sql in page_sql)


@pytest.mark.parametrize("cursor", ["garbage", "eyJ4IjoxfQ", "a" * 999, "eyJ4IjoxfQ:1t:abc"])
def test_it_answers_400_for_a_cursor_it_did_not_hand_out(api, many_commands, cursor):
    response = api.get(URL, {"cursor": cursor})
    assert response.status_code == 400
    assert "cursor" in response.json()["detail"]


def test_it_answers_422_for_a_cursor_that_is_not_a_token_at_all(api, many_commands):
    response = api.get(URL, {"cursor": "\u00e9t\u00e9"})
    assert response.status_code == 422 and response.json()["detail"][0]["loc"] == ["query", "cursor"]


def test_it_refuses_a_cursor_from_another_list(api, many_commands):
    CookieBalance.objects.create(guild_id=GUILD, member_id=1, balance=1)
    foreign = cursor_encode(CookieBalance, ("-balance", "member_id"), CookieBalance.objects.get())
    assert api.get(URL, {"cursor": foreign}).status_code == 400


def test_it_refuses_a_tampered_cursor(api, many_commands):
    cursor = api.get(URL, {"limit": 10}).json()["next_cursor"]
    tampered = cursor[:-3] + ("AAA" if not cursor.endswith("AAA") else "BBB")
    assert api.get(URL, {"cursor": tampered}).status_code == 400


@pytest.mark.parametrize("limit", [0, 201, -1, "x"])
def test_it_answers_422_for_a_limit_out_of_range(api, limit):
    assert api.get(URL, {"limit": limit}).status_code == 422


def test_the_helper_refuses_a_limit_out_of_range(db):
    with pytest.raises(CursorInvalid):
        paginate(CustomCommand.objects.all(), order=("name",), cursor=None, limit=0)


@pytest.mark.postgres
def test_it_pages_balances_by_an_index_range_scan_on_postgres(api):
    CookieBalance.objects.bulk_create(
        [CookieBalance(guild_id=g, member_id=m, balance=m % 97) for g in range(1, 6) for m in range(1, 4001)], batch_size=2000
    )
    with connection.cursor() as cursor:
        cursor.execute(f"ANALYZE {CookieBalance._meta.db_table}")
    order = ("-balance", "member_id")
    first = paginate(CookieBalance.objects.filter(guild_id=3), order=order, cursor=None, limit=50)
    following = paginate(CookieBalance.objects.filter(guild_id=3), order=order, cursor=first.next_cursor, limit=50)
    assert len(following.items) == 50
    plan = page_query(CookieBalance.objects.filter(guild_id=3), order=order, cursor=first.next_cursor, limit=50).explain()
    assert "cookie_leaderboard" in plan and "Sort" not in plan and "Seq Scan" not in plan, plan
