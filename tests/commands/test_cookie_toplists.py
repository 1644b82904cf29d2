"""The 7- and 30-day toplists: kept with each change, rolled off daily, rebuilt from the ledger, without members who left."""

from __future__ import annotations

import random
from datetime import UTC, date, datetime, timedelta

import pytest
from django.core.management import call_command
from django.db.models import Sum

from commands.models import CookieDay, CookieLedger, CookieWindow, CookieWindowClock, LedgerReason
from commands.selectors import cookie_leaderboard, cookie_leaderboard_position, cookie_standing, cookie_standings
from commands.services import cookie_give, cookie_set, cookie_toplists_rebuild, cookie_windows_roll, guild_settings_update
from commands.services.toplists import window_first_day
from guilds.models import Member
from tests.conftest import GUILD, OTHER_GUILD

pytestmark = pytest.mark.django_db
TODAY = date(2026, 12, 1)


def at(day: date, hour: int = 12) -> datetime:
    return datetime(day.year, day.month, day.day, hour, tzinfo=UTC)


@pytest.fixture(autouse=True)
def free_rules():
    for guild in (GUILD, OTHER_GUILD):
        guild_settings_update(guild_id=guild, cookie_pair_cooldown_seconds=0, cookie_daily_cap=None)
    # The windows' clocks as the daily roll-off leaves them on TODAY.
    cookie_windows_roll(today=TODAY)


def windows(period: str, guild_id: int = GUILD) -> dict[int, int]:
    return dict(CookieWindow.objects.filter(guild_id=guild_id, period=period).exclude(total=0).values_list("member_id", "total"))


def from_ledger(period: str, today: date, guild_id: int = GUILD) -> dict[int, int]:
    """The truth: the ledger's gives, takes and thanks from the window's first day on."""
    since = at(window_first_day(period, today), 0)
    rows = (
        CookieLedger.objects.filter(guild_id=guild_id, created_at__gte=since, reason__in=["give", "take", "thanks"])
        .values("receiver_id")
        .annotate(sum=Sum("delta"))
    )
    return {r["receiver_id"]: r["sum"] for r in rows if r["sum"]}


def test_it_counts_gives_takes_and_thanks_in_both_windows():
    cookie_give(guild_id=GUILD, giver_id=1, receiver_id=10, now=at(TODAY))
    cookie_give(guild_id=GUILD, giver_id=2, receiver_id=10, now=at(TODAY), thanks=True)
    cookie_give(guild_id=GUILD, giver_id=3, receiver_id=10, delta=-1, now=at(TODAY))
    cookie_give(guild_id=GUILD, giver_id=1, receiver_id=20, now=at(TODAY))
    assert windows("7d") == windows("30d") == {10: 1, 20: 1}
    assert CookieDay.objects.get(guild_id=GUILD, member_id=10).total == 1
    assert windows("7d", OTHER_GUILD) == {}


def test_it_leaves_admin_sets_out_of_the_windows():
    cookie_set(guild_id=GUILD, member_id=10, balance=500, actor_id=99)
    assert windows("7d") == {}
    assert cookie_standing(guild_id=GUILD, member_id=10).rank == 1  # all time is the balance
    assert cookie_standing(guild_id=GUILD, member_id=10, period="7d").rank is None


def test_it_rolls_days_off_each_window_once_and_matches_the_ledger():
    rng = random.Random(7)
    start = TODAY - timedelta(days=40)
    CookieWindowClock.objects.all().delete()
    cookie_windows_roll(today=start)
    for offset in range(41):
        day = start + timedelta(days=offset)
        for _ in range(rng.randrange(1, 6)):
            giver, receiver = rng.sample(range(1, 12), 2)
            try:
                cookie_give(guild_id=GUILD, giver_id=giver, receiver_id=receiver, delta=rng.choice((1, 1, -1)), now=at(day))
            except Exception:
                pass  # a take from an empty count: refused, nothing written
        cookie_windows_roll(today=day)
        cookie_windows_roll(today=day)  # a second worker the same day changes nothing
        assert windows("7d") == from_ledger("7d", day), day
        assert windows("30d") == from_ledger("30d", day), day
    assert CookieWindowClock.objects.get(period="7d").first_day == TODAY - timedelta(days=6)
    assert not CookieDay.objects.filter(day__lt=TODAY - timedelta(days=30)).exists()  # pruned


def test_it_catches_up_days_missed_while_the_worker_was_down():
    cookie_give(guild_id=GUILD, giver_id=1, receiver_id=10, now=at(TODAY))
    later = TODAY + timedelta(days=10)
    assert cookie_windows_roll(today=later) == {"7d": 10, "30d": 10}
    assert windows("7d") == {} and windows("30d") == {10: 1}


def test_it_rebuilds_from_the_ledger_with_progress():
    for member in (10, 20, 30):
        cookie_give(guild_id=GUILD, giver_id=1, receiver_id=member, now=at(TODAY))
    cookie_give(guild_id=OTHER_GUILD, giver_id=1, receiver_id=40, now=at(TODAY - timedelta(days=9)))
    # (A change is always counted as today's; the 9-day-old one is in the 7-day window until a rebuild.)
    expected = {GUILD: ({10: 1, 20: 1, 30: 1},) * 2, OTHER_GUILD: ({}, {40: 1})}
    CookieWindow.objects.update(total=999)
    CookieDay.objects.all().delete()
    assert list(cookie_toplists_rebuild(today=TODAY)) == [(1, 2), (2, 2)]
    assert {g: (windows("7d", g), windows("30d", g)) for g in (GUILD, OTHER_GUILD)} == expected
    assert windows("30d", OTHER_GUILD) == {40: 1} and windows("7d", OTHER_GUILD) == {}


def test_the_rebuild_command_reports_progress():
    cookie_give(guild_id=GUILD, giver_id=1, receiver_id=10)
    CookieWindow.objects.all().delete()
    out = __import__("io").StringIO()
    call_command("cookie_toplists_rebuild", stdout=out)
    assert "1 of 1 guilds rebuilt" in out.getvalue()
    assert windows("7d") == {10: 1}


def test_it_leaves_members_who_left_out_of_every_toplist_and_keeps_their_data():
    for member, gives in ((10, 3), (20, 2), (30, 1)):
        for giver in range(gives):
            cookie_give(guild_id=GUILD, giver_id=100 + giver, receiver_id=member)
    Member.objects.create(guild_id=GUILD, user_id=10, username="gone", left_at=datetime.now(UTC))
    Member.objects.create(guild_id=GUILD, user_id=20, username="here")
    for period in ("all", "7d", "30d"):
        board = cookie_leaderboard(guild_id=GUILD, period=period)
        assert [(s.member_id, s.rank) for s in board] == [(20, 1), (30, 2)], period
        assert cookie_standing(guild_id=GUILD, member_id=30, period=period).rank == 2
        assert cookie_standing(guild_id=GUILD, member_id=10, period=period).rank is None
        assert cookie_leaderboard_position(guild_id=GUILD, member_id=30, period=period) == 1
    assert windows("7d")[10] == 3  # kept


def test_it_gives_a_members_rank_in_each_period():
    cookie_set(guild_id=GUILD, member_id=10, balance=100, actor_id=99)
    for giver in range(3):
        cookie_give(guild_id=GUILD, giver_id=200 + giver, receiver_id=20)
    cookie_give(guild_id=GUILD, giver_id=1, receiver_id=10)
    ranks = {p: (s.rank, s.balance) for p, s in cookie_standings(guild_id=GUILD, member_id=10).items()}
    assert ranks == {"all": (1, 101), "7d": (2, 1), "30d": (2, 1)}


def test_thanks_share_the_pair_cooldown_and_daily_cap_with_plus_plus():
    guild_settings_update(guild_id=GUILD, cookie_pair_cooldown_seconds=60, cookie_daily_cap=2)
    now = at(TODAY)
    cookie_give(guild_id=GUILD, giver_id=1, receiver_id=10, now=now)
    with pytest.raises(Exception, match="Slow down"):
        cookie_give(guild_id=GUILD, giver_id=1, receiver_id=10, now=now + timedelta(seconds=5), thanks=True)
    cookie_give(guild_id=GUILD, giver_id=1, receiver_id=20, now=now, thanks=True)
    with pytest.raises(Exception, match="all 2 of your cookie changes"):
        cookie_give(guild_id=GUILD, giver_id=1, receiver_id=30, now=now, thanks=True)
    assert CookieLedger.objects.filter(reason=LedgerReason.THANKS).count() == 1
    with pytest.raises(Exception, match="one at a time"):
        cookie_give(guild_id=GUILD, giver_id=5, receiver_id=30, delta=-1, thanks=True)
