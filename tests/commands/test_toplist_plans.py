"""A toplist page is an index range: the window's ranking index, members who left from their partial index."""

from __future__ import annotations

from datetime import UTC, datetime

import pytest
from django.db import connection

from commands.models import CookieWindow
from commands.selectors import _ranked
from guilds.models import Member

pytestmark = pytest.mark.django_db
GUILD = 4


def _fill(guilds: int, members: int) -> None:
    CookieWindow.objects.bulk_create(
        (
            CookieWindow(guild_id=g, member_id=m, period=period, total=(m * 7919) % 1000 + 1)
            for g in range(1, guilds + 1)
            for m in range(1, members + 1)
            for period in ("7d", "30d")
        ),
        batch_size=5000,
    )
    left = datetime.now(UTC)
    Member.objects.bulk_create(
        (
            Member(guild_id=g, user_id=m, username=f"u{m}", left_at=left if m % 500 == 0 else None)
            for g in range(1, guilds + 1)
            for m in range(1, members + 1)
        ),
        batch_size=5000,
    )
    with connection.cursor() as cursor:
        tables = "" if connection.vendor == "sqlite" else f"{CookieWindow._meta.db_table}, {Member._meta.db_table}"
        cursor.execute(f"ANALYZE {tables}")


def _page_plan(period: str) -> str:
    rows, field = _ranked(GUILD, period)
    return rows.order_by(f"-{field}", "member_id").values_list("member_id", field)[20:30].explain()


def test_it_reads_a_period_page_from_the_window_index():
    _fill(guilds=5, members=2000)
    plan = _page_plan("7d")
    assert "cookie_window_top" in plan, plan


@pytest.mark.postgres
def test_it_reads_a_page_by_index_on_postgres_without_scanning_the_windows():
    _fill(guilds=8, members=20000)
    plan = _page_plan("7d")
    assert "cookie_window_top" in plan, plan
    assert f"Seq Scan on {CookieWindow._meta.db_table}" not in plan, plan
    assert "directory_member_left" in plan, plan  # the few who left, not every member
    rows, field = _ranked(GUILD, "30d")
    rank_plan = rows.filter(**{f"{field}__gt": 500}).explain()
    assert "cookie_window_top" in rank_plan, rank_plan
