"""Cookies: giving and taking under the guild's rules, admin changes, standings and parsing."""

from __future__ import annotations

from datetime import timedelta

import pytest
from django.utils import timezone

from commands.errors import CookieError, CookieOnCooldown
from commands.models import CookieBalance, CookieLedger
from commands.selectors import cookie_balance, cookie_leaderboard, cookie_ledger, cookie_standing
from commands.services import (
    CookieChange,
    cookie_give,
    cookie_mentions_parse,
    cookie_reset,
    cookie_set,
    guild_settings_update,
)
from config.errors import ApplicationError
from tests.conftest import GUILD, OTHER_GUILD

pytestmark = pytest.mark.django_db

GIVER = 11
RECEIVER = 22
ADMIN = 99


@pytest.fixture
def t0():
    return timezone.now().replace(microsecond=0)


def give(giver=GIVER, receiver=RECEIVER, delta=1, now=None, guild_id=GUILD, **kwargs) -> CookieChange:
    return cookie_give(guild_id=guild_id, giver_id=giver, receiver_id=receiver, delta=delta, now=now, **kwargs)


def balance(member_id=RECEIVER, guild_id=GUILD) -> int:
    return cookie_balance(guild_id=guild_id, member_id=member_id)


def balances(guild_id=GUILD) -> dict[int, int]:
    return dict(CookieBalance.objects.filter(guild_id=guild_id).values_list("member_id", "balance"))


def set_balances(values: dict[int, int], guild_id=GUILD) -> None:
    for member_id, value in values.items():
        cookie_set(guild_id=guild_id, member_id=member_id, balance=value, actor_id=ADMIN)


# --- give and take -------------------------------------------------------------------


def test_it_gives_a_cookie(t0):
    change = give(message_id=777, now=t0)
    assert change == CookieChange(receiver_id=RECEIVER, delta=1, balance=1)
    assert balance() == 1
    row = CookieLedger.objects.get()
    assert (row.guild_id, row.giver_id, row.receiver_id, row.delta, row.reason, row.message_id) == (
        GUILD,
        GIVER,
        RECEIVER,
        1,
        "give",
        777,
    )
    assert row.created_at == t0


def test_it_takes_a_cookie(t0):
    give(giver=1, now=t0)
    give(giver=2, now=t0)
    change = give(giver=3, delta=-1, message_id=778, now=t0)
    assert change == CookieChange(receiver_id=RECEIVER, delta=-1, balance=1)
    assert balance() == 1
    row = CookieLedger.objects.get(giver_id=3)
    assert (row.receiver_id, row.delta, row.reason, row.message_id) == (RECEIVER, -1, "take", 778)


def test_it_adds_up_gives_from_several_members(t0):
    for giver in range(1, 6):
        assert give(giver=giver, now=t0).balance == giver
    assert balance() == 5
    assert CookieLedger.objects.filter(receiver_id=RECEIVER).count() == 5


@pytest.mark.parametrize("delta,message", [(1, "give yourself"), (-1, "take your own")])
def test_it_refuses_self_changes(delta, message):
    with pytest.raises(CookieError, match=message):
        give(giver=RECEIVER, receiver=RECEIVER, delta=delta)
    assert not CookieLedger.objects.exists()
    assert not CookieBalance.objects.exists()


def test_it_refuses_bots():
    with pytest.raises(CookieError, match="Bots"):
        give(receiver_is_bot=True)
    assert not CookieLedger.objects.exists()
    assert not CookieBalance.objects.exists()


@pytest.mark.parametrize("delta", [0, 2, -5])
def test_it_refuses_more_than_one_at_a_time(delta):
    with pytest.raises(CookieError, match="one at a time"):
        give(delta=delta)
    assert not CookieLedger.objects.exists()


def test_its_refusals_are_application_errors():
    with pytest.raises(ApplicationError):
        give(giver=RECEIVER)


# --- pair cooldown -------------------------------------------------------------------


def test_it_applies_the_pair_cooldown(t0):
    give(now=t0)
    with pytest.raises(CookieOnCooldown, match="30s"):
        give(now=t0 + timedelta(seconds=30))
    assert balance() == 1
    assert CookieLedger.objects.count() == 1
    give(now=t0 + timedelta(seconds=61))
    assert balance() == 2
    assert CookieLedger.objects.count() == 2


def test_it_applies_the_pair_cooldown_to_takes(t0):
    give(now=t0)
    with pytest.raises(CookieOnCooldown):
        give(delta=-1, now=t0 + timedelta(seconds=59))
    assert balance() == 1


def test_it_applies_the_pair_cooldown_per_pair(t0):
    give(now=t0)
    give(receiver=33, now=t0 + timedelta(seconds=30))  # another receiver
    give(giver=12, now=t0 + timedelta(seconds=30))  # another giver
    give(now=t0 + timedelta(seconds=1), guild_id=OTHER_GUILD)  # another guild
    assert balances() == {RECEIVER: 2, 33: 1}
    assert balances(OTHER_GUILD) == {RECEIVER: 1}


def test_it_follows_the_guilds_pair_cooldown(t0):
    guild_settings_update(guild_id=GUILD, cookie_pair_cooldown_seconds=10)
    give(now=t0)
    with pytest.raises(CookieOnCooldown):
        give(now=t0 + timedelta(seconds=9))
    give(now=t0 + timedelta(seconds=11))
    assert balance() == 2


def test_it_has_no_pair_cooldown_when_off(t0):
    guild_settings_update(guild_id=GUILD, cookie_pair_cooldown_seconds=0)
    for _ in range(3):
        give(now=t0)
    assert balance() == 3


# --- daily cap -----------------------------------------------------------------------


def test_it_applies_the_daily_cap(t0):
    guild_settings_update(guild_id=GUILD, cookie_daily_cap=3, cookie_pair_cooldown_seconds=0)
    give(receiver=21, now=t0)
    give(receiver=22, now=t0 + timedelta(minutes=1))
    give(receiver=23, delta=-1, now=t0 + timedelta(minutes=2))
    with pytest.raises(CookieError, match="all 3"):
        give(receiver=24, now=t0 + timedelta(hours=23))
    assert balance(24) == 0
    assert CookieLedger.objects.count() == 3
    give(receiver=24, now=t0 + timedelta(days=1, seconds=1))  # the first has left the window
    assert balance(24) == 1
    with pytest.raises(CookieError, match="all 3"):
        give(receiver=25, now=t0 + timedelta(days=1, seconds=2))
    give(receiver=25, now=t0 + timedelta(days=1, minutes=2, seconds=1))
    assert CookieLedger.objects.count() == 5


def test_it_applies_the_daily_cap_per_giver(t0):
    guild_settings_update(guild_id=GUILD, cookie_daily_cap=1, cookie_pair_cooldown_seconds=0)
    give(giver=1, now=t0)
    with pytest.raises(CookieError):
        give(giver=1, now=t0)
    give(giver=2, now=t0)
    assert balance() == 2


def test_it_has_no_daily_cap_when_none(t0):
    guild_settings_update(guild_id=GUILD, cookie_daily_cap=None, cookie_pair_cooldown_seconds=0)
    for i in range(60):  # more than the default cap of 50
        give(receiver=1000 + i, now=t0)
    assert CookieLedger.objects.count() == 60


def test_it_applies_the_default_daily_cap_of_50(t0):
    guild_settings_update(guild_id=GUILD, cookie_pair_cooldown_seconds=0)
    for i in range(50):
        give(receiver=1000 + i, now=t0)
    with pytest.raises(CookieError, match="all 50"):
        give(receiver=2000, now=t0)


# --- negative balances ---------------------------------------------------------------


def test_it_refuses_to_take_from_nothing_when_negatives_are_off(t0):
    guild_settings_update(guild_id=GUILD, cookie_allow_negative=False)
    with pytest.raises(CookieError, match="no cookies to take"):
        give(delta=-1, now=t0)
    assert not CookieBalance.objects.exists()
    assert not CookieLedger.objects.exists()


def test_it_refuses_to_take_below_zero_when_negatives_are_off(t0):
    guild_settings_update(guild_id=GUILD, cookie_allow_negative=False)
    give(giver=1, now=t0)
    give(giver=2, delta=-1, now=t0)
    assert balance() == 0
    with pytest.raises(CookieError, match="no cookies to take"):
        give(giver=3, delta=-1, now=t0)
    assert balance() == 0
    assert CookieLedger.objects.count() == 2
    assert not CookieLedger.objects.filter(giver_id=3).exists()


def test_it_allows_negative_balances_when_on(t0):
    change = give(delta=-1, now=t0)
    assert change.balance == -1
    assert balance() == -1
    assert CookieLedger.objects.get().delta == -1


# --- admin set and reset -------------------------------------------------------------


def test_it_sets_a_balance_and_records_the_difference(t0):
    give(now=t0)
    assert cookie_set(guild_id=GUILD, member_id=RECEIVER, balance=10, actor_id=ADMIN) == CookieChange(
        receiver_id=RECEIVER, delta=9, balance=10
    )
    cookie_set(guild_id=GUILD, member_id=RECEIVER, balance=4, actor_id=ADMIN)
    assert balance() == 4
    rows = list(CookieLedger.objects.filter(reason="admin_set").order_by("pk").values_list("giver_id", "receiver_id", "delta"))
    assert rows == [(ADMIN, RECEIVER, 9), (ADMIN, RECEIVER, -6)]


def test_it_sets_a_balance_for_a_new_member():
    cookie_set(guild_id=GUILD, member_id=5, balance=3, actor_id=ADMIN)
    assert balance(5) == 3
    assert CookieLedger.objects.get().delta == 3


def test_it_writes_no_ledger_row_when_set_changes_nothing():
    cookie_set(guild_id=GUILD, member_id=5, balance=3, actor_id=ADMIN)
    change = cookie_set(guild_id=GUILD, member_id=5, balance=3, actor_id=ADMIN)
    assert change.delta == 0
    assert CookieLedger.objects.count() == 1


def test_it_refuses_a_negative_set_when_negatives_are_off():
    cookie_set(guild_id=GUILD, member_id=5, balance=3, actor_id=ADMIN)
    guild_settings_update(guild_id=GUILD, cookie_allow_negative=False)
    with pytest.raises(CookieError, match="negative"):
        cookie_set(guild_id=GUILD, member_id=5, balance=-1, actor_id=ADMIN)
    assert balance(5) == 3
    assert CookieLedger.objects.count() == 1


def test_it_refuses_a_huge_set():
    with pytest.raises(CookieError):
        cookie_set(guild_id=GUILD, member_id=5, balance=10**16, actor_id=ADMIN)
    assert not CookieBalance.objects.exists()


def test_it_resets_one_member():
    set_balances({1: 5, 2: 3})
    set_balances({1: 9}, guild_id=OTHER_GUILD)
    assert cookie_reset(guild_id=GUILD, actor_id=ADMIN, member_id=1) == 1
    assert balances() == {1: 0, 2: 3}
    assert balances(OTHER_GUILD) == {1: 9}
    row = CookieLedger.objects.get(reason="admin_reset")
    assert (row.guild_id, row.giver_id, row.receiver_id, row.delta) == (GUILD, ADMIN, 1, -5)


def test_it_resets_the_whole_guild():
    set_balances({1: 5, 2: -3, 3: 0, 4: 8})
    set_balances({1: 9, 7: 2}, guild_id=OTHER_GUILD)
    assert cookie_reset(guild_id=GUILD, actor_id=ADMIN) == 3
    assert balances() == {1: 0, 2: 0, 3: 0, 4: 0}
    assert balances(OTHER_GUILD) == {1: 9, 7: 2}
    resets = set(CookieLedger.objects.filter(reason="admin_reset").values_list("guild_id", "receiver_id", "delta"))
    assert resets == {(GUILD, 1, -5), (GUILD, 2, 3), (GUILD, 4, -8)}


def test_it_resets_in_batches():
    set_balances({member_id: member_id for member_id in range(1, 8)})
    assert cookie_reset(guild_id=GUILD, actor_id=ADMIN, batch=3) == 7
    assert set(balances().values()) == {0}
    assert CookieLedger.objects.filter(reason="admin_reset").count() == 7


def test_it_resets_nothing_twice():
    set_balances({1: 5})
    cookie_reset(guild_id=GUILD, actor_id=ADMIN)
    assert cookie_reset(guild_id=GUILD, actor_id=ADMIN) == 0
    assert cookie_reset(guild_id=GUILD, actor_id=ADMIN, member_id=1) == 0
    assert CookieLedger.objects.filter(reason="admin_reset").count() == 1


def test_it_keeps_guilds_apart(t0):
    give(now=t0)
    give(giver=GIVER, receiver=RECEIVER, now=t0, guild_id=OTHER_GUILD)
    give(giver=12, now=t0, guild_id=OTHER_GUILD)
    assert balance() == 1
    assert balance(guild_id=OTHER_GUILD) == 2
    assert cookie_ledger(guild_id=GUILD).count() == 1
    assert cookie_ledger(guild_id=OTHER_GUILD, member_id=RECEIVER).count() == 2


def test_it_keeps_guild_rules_apart(t0):
    guild_settings_update(guild_id=OTHER_GUILD, cookie_allow_negative=False, cookie_pair_cooldown_seconds=0)
    assert give(delta=-1, now=t0).balance == -1
    with pytest.raises(CookieError):
        give(delta=-1, now=t0, guild_id=OTHER_GUILD)
    with pytest.raises(CookieOnCooldown):
        give(now=t0)


# --- standings -----------------------------------------------------------------------


def test_it_ranks_a_member_with_shared_ranks_for_ties():
    set_balances({1: 5, 2: 5, 3: 3, 4: 0, 5: -2})
    set_balances({9: 100}, guild_id=OTHER_GUILD)
    assert [cookie_standing(guild_id=GUILD, member_id=m).rank for m in (1, 2, 3, 4, 5)] == [1, 1, 3, 4, 5]
    standing = cookie_standing(guild_id=GUILD, member_id=3)
    assert (standing.member_id, standing.balance, standing.rank) == (3, 3, 3)


def test_it_gives_no_rank_to_an_unknown_member():
    set_balances({1: 5})
    standing = cookie_standing(guild_id=GUILD, member_id=42)
    assert (standing.member_id, standing.balance, standing.rank) == (42, 0, None)
    assert cookie_standing(guild_id=OTHER_GUILD, member_id=1).rank is None


def _board(page: int, per_page: int = 3) -> list[tuple[int, int, int]]:
    return [(s.member_id, s.balance, s.rank) for s in cookie_leaderboard(guild_id=GUILD, page=page, per_page=per_page)]


def test_it_pages_the_leaderboard():
    set_balances({10: 1, 11: 9, 12: 5, 13: 7, 14: 3, 15: 8, 16: 2})
    set_balances({99: 1000}, guild_id=OTHER_GUILD)
    assert _board(1) == [(11, 9, 1), (15, 8, 2), (13, 7, 3)]
    assert _board(2) == [(12, 5, 4), (14, 3, 5), (16, 2, 6)]
    assert _board(3) == [(10, 1, 7)]
    assert _board(4) == []


def test_it_orders_ties_by_member_id_and_shares_their_rank():
    set_balances({30: 8, 20: 8, 10: 9, 40: 8, 50: 5, 60: 5, 70: 1})
    assert _board(1) == [(10, 9, 1), (20, 8, 2), (30, 8, 2)]
    assert _board(2) == [(40, 8, 2), (50, 5, 5), (60, 5, 5)]
    assert _board(3) == [(70, 1, 7)]


def test_it_uses_ten_per_page_by_default():
    set_balances({member_id: member_id for member_id in range(1, 13)})
    first = cookie_leaderboard(guild_id=GUILD)
    assert [s.member_id for s in first] == list(range(12, 2, -1))
    assert [s.rank for s in first] == list(range(1, 11))
    second = cookie_leaderboard(guild_id=GUILD, page=2)
    assert [(s.member_id, s.rank) for s in second] == [(2, 11), (1, 12)]
    assert cookie_leaderboard(guild_id=GUILD, page=0) == first


def test_it_agrees_between_standing_and_leaderboard():
    set_balances({1: 4, 2: 4, 3: 7, 4: 4, 5: 1, 6: 7, 7: 0})
    board = cookie_leaderboard(guild_id=GUILD, page=1, per_page=20)
    for entry in board:
        assert cookie_standing(guild_id=GUILD, member_id=entry.member_id) == entry


# --- parsing messages ----------------------------------------------------------------


@pytest.mark.parametrize(
    "content,expected",
    [
        ("<@123>++", [(123, 1)]),
        ("<@123> ++", [(123, 1)]),
        ("<@!123>++", [(123, 1)]),
        ("<@123>--", [(123, -1)]),
        ("<@123> --", [(123, -1)]),
        ("thanks <@123>++ for that", [(123, 1)]),
        ("<@1> hi <@2>++", [(2, 1)]),
        ("<@1>++ <@2>-- <@!3> ++", [(1, 1), (2, -1), (3, 1)]),
        ("<@1>++ <@1>++ <@!1>--", [(1, 1)]),
        ("<@1>++<@2>++", [(1, 1), (2, 1)]),
        ("no mentions here ++", []),
        ("", []),
        ("<@123>", []),
        ("<@123> + +", []),
        ("<@&123>++", []),
        ("<#123>++", []),
        ("<@abc>++", []),
        ("<@0>++", []),
    ],
)
def test_it_parses_cookie_mentions(content, expected):
    assert cookie_mentions_parse(content, 5) == expected


def test_it_caps_mentions_per_message():
    content = " ".join(f"<@{i}>++" for i in range(1, 9))
    assert cookie_mentions_parse(content, 5) == [(i, 1) for i in range(1, 6)]
    assert cookie_mentions_parse(content, 1) == [(1, 1)]
    assert cookie_mentions_parse(content, 25) == [(i, 1) for i in range(1, 9)]


def test_it_counts_duplicates_once_towards_the_cap():
    content = "<@1>++ <@1>++ <@1>++ <@2>++ <@3>++"
    assert cookie_mentions_parse(content, 3) == [(1, 1), (2, 1), (3, 1)]


def test_it_ignores_mention_ids_beyond_64_bits():
    assert cookie_mentions_parse("<@99999999999999999999>++ <@123>++", cap=5) == [(123, 1)]
