"""The indexes the hot queries rely on exist, are partial where they should be, and are used."""

from __future__ import annotations

from datetime import timedelta

import pytest
from django.db import connection
from django.utils import timezone

from commands.models import CommandAlias, CookieBalance, CookieDay, CookieLedger, CookieWindow, CustomCommand
from timers.models import RoleReport, TimedRole, TimerState
from timers.selectors import reports_due, timers_due_expiry, timers_due_resume, timers_due_warning

EXPECTED = {
    CustomCommand: {"command_unique_name_per_guild"},
    CommandAlias: {"alias_unique_name_per_guild"},
    CookieBalance: {"cookie_unique_member_per_guild", "cookie_leaderboard"},
    CookieLedger: {"ledger_pair_recent", "ledger_giver_recent", "ledger_receiver_recent"},
    # Toplists by period: a page is a range of cookie_window_top; the roll-off reads a day by cookie_day_by_day.
    CookieWindow: {"cookie_window_unique", "cookie_window_top"},
    CookieDay: {"cookie_day_unique", "cookie_day_by_day"},
    TimedRole: {"timer_one_live_per_member_role", "timer_due_expiry", "timer_due_warning", "timer_due_resume"},
}
PARTIAL = {"timer_one_live_per_member_role", "timer_due_expiry", "timer_due_warning", "timer_due_resume"}


def _index_sql(name: str) -> str:
    with connection.cursor() as cursor:
        if connection.vendor == "postgresql":
            cursor.execute("SELECT indexdef FROM pg_indexes WHERE indexname = %s", [name])
        else:
            cursor.execute("SELECT sql FROM sqlite_master WHERE type = 'index' AND name = %s", [name])
        row = cursor.fetchone()
    return row[0] if row else ""


@pytest.mark.django_db
@pytest.mark.parametrize("model", list(EXPECTED), ids=lambda m: m.__name__)
def test_it_has_the_indexes_the_hot_queries_need(model):
    with connection.cursor() as cursor:
        present = set(connection.introspection.get_constraints(cursor, model._meta.db_table))
    assert EXPECTED[model] <= present, EXPECTED[model] - present


@pytest.mark.django_db
@pytest.mark.parametrize("name", sorted(PARTIAL))
def test_it_keeps_the_due_and_live_indexes_partial(name):
    assert "WHERE" in _index_sql(name).upper()


def _fill_timers(count: int) -> None:
    now = timezone.now()
    rows = [
        TimedRole(
            guild_id=1,
            member_id=i,
            role_id=7,
            state=TimerState.ACTIVE,
            expires_at=now + timedelta(days=1, seconds=i),
            next_warn_at=now + timedelta(hours=23, seconds=i),
        )
        for i in range(count)
    ]
    rows += [
        TimedRole(guild_id=1, member_id=count + i, role_id=7, state=TimerState.EXPIRED, expires_at=now - timedelta(days=1))
        for i in range(count)
    ]
    rows += [
        TimedRole(
            guild_id=1,
            member_id=2 * count + i,
            role_id=7,
            state=TimerState.PAUSED,
            paused_remaining=timedelta(hours=1),
            pause_until=now + timedelta(days=2),
        )
        for i in range(count // 10)
    ]
    TimedRole.objects.bulk_create(rows, batch_size=2000)
    RoleReport.objects.bulk_create(
        [RoleReport(guild_id=1, role_id=7, channel_id=i, next_run_at=now + timedelta(hours=1, seconds=i)) for i in range(count)],
        batch_size=2000,
    )
    with connection.cursor() as cursor:
        if connection.vendor == "sqlite":
            cursor.execute("ANALYZE")
        else:
            cursor.execute(f"ANALYZE {TimedRole._meta.db_table}")
            cursor.execute(f"ANALYZE {RoleReport._meta.db_table}")


@pytest.mark.django_db
def test_it_answers_the_due_queries_from_their_indexes():
    """The queries the sweep's claims run (timer_auto_resume and sweep_claim_reports use these selectors)."""
    _fill_timers(5000)
    now = timezone.now()
    plans = {
        "timer_due_expiry": timers_due_expiry(now=now)[:500].explain(),
        "timer_due_warning": timers_due_warning(now=now)[:500].explain(),
        "timer_due_resume": timers_due_resume(now=now)[:500].explain(),
        "report_due": reports_due(now=now)[:20].explain(),  # what sweep_claim_reports runs
    }
    for index, plan in plans.items():
        assert index in plan, f"{index} not used:\n{plan}"


@pytest.mark.postgres
@pytest.mark.django_db
def test_it_probes_due_timers_by_index_on_postgres():
    _fill_timers(20000)
    plan = timers_due_expiry(now=timezone.now())[:500].explain(format="text")
    assert "timer_due_expiry" in plan
    assert "Seq Scan" not in plan, plan


@pytest.mark.django_db
def test_it_reads_the_leaderboard_from_its_index():
    CookieBalance.objects.bulk_create(
        [CookieBalance(guild_id=g, member_id=m, balance=m % 97) for g in range(1, 6) for m in range(2000)], batch_size=2000
    )
    with connection.cursor() as cursor:
        cursor.execute("ANALYZE" if connection.vendor == "sqlite" else f"ANALYZE {CookieBalance._meta.db_table}")
    plan = CookieBalance.objects.filter(guild_id=3).order_by("-balance", "member_id")[:10].explain()
    assert "cookie_leaderboard" in plan, plan
