"""Cookies under real concurrency: many threads, each with its own database connection.

These tests commit for real (``transaction=True``) so that the threads see each other's
work; each worker closes its connections when it ends so that none is leaked (on
PostgreSQL they go back to the pool).
"""

from __future__ import annotations

import threading
from concurrent.futures import ThreadPoolExecutor

import pytest
from django.db import connections
from django.utils import timezone

from commands.errors import CookieOnCooldown
from commands.models import CookieBalance, CookieLedger
from commands.selectors import cookie_balance
from commands.services import cookie_give, guild_settings_update
from tests.conftest import GUILD

pytestmark = pytest.mark.django_db(transaction=True)

WORKERS = 32
RECEIVER = 5000


def test_it_counts_every_give_from_many_threads():
    guild_settings_update(guild_id=GUILD, cookie_pair_cooldown_seconds=0, cookie_daily_cap=None)
    givers = range(1, 1001)

    def give(giver_id: int) -> int:
        try:
            return cookie_give(guild_id=GUILD, giver_id=giver_id, receiver_id=RECEIVER).balance
        finally:
            connections.close_all()

    with ThreadPoolExecutor(max_workers=WORKERS) as pool:
        results = list(pool.map(give, givers))

    assert sorted(results) == list(range(1, 1001))  # each give saw a distinct balance
    assert cookie_balance(guild_id=GUILD, member_id=RECEIVER) == 1000
    assert CookieBalance.objects.filter(guild_id=GUILD).count() == 1
    ledger = CookieLedger.objects.filter(guild_id=GUILD, receiver_id=RECEIVER)
    assert ledger.count() == 1000
    assert set(ledger.values_list("giver_id", flat=True)) == set(givers)
    assert set(ledger.values_list("delta", flat=True)) == {1}


def test_it_counts_racing_first_gives_to_new_members():
    # The first gives to a member race to create their balance row; none may be lost or refused.
    guild_settings_update(guild_id=GUILD, cookie_pair_cooldown_seconds=0, cookie_daily_cap=None)
    receivers = range(6000, 6020)
    barrier = threading.Barrier(WORKERS, timeout=30)

    def give(giver_id: int, receiver_id: int) -> None:
        try:
            barrier.wait()
            cookie_give(guild_id=GUILD, giver_id=giver_id, receiver_id=receiver_id)
        finally:
            connections.close_all()

    with ThreadPoolExecutor(max_workers=WORKERS) as pool:
        for receiver_id in receivers:
            list(pool.map(give, range(1, WORKERS + 1), [receiver_id] * WORKERS))

    assert {m: cookie_balance(guild_id=GUILD, member_id=m) for m in receivers} == dict.fromkeys(receivers, WORKERS)
    assert CookieLedger.objects.filter(guild_id=GUILD).count() == WORKERS * len(receivers)


def test_it_lets_one_of_racing_gives_for_one_pair_through():
    now = timezone.now()
    barrier = threading.Barrier(WORKERS, timeout=30)

    def give(_: int) -> str:
        try:
            barrier.wait()
            cookie_give(guild_id=GUILD, giver_id=1, receiver_id=RECEIVER, now=now)
            return "given"
        except CookieOnCooldown:
            return "cooldown"
        finally:
            connections.close_all()

    with ThreadPoolExecutor(max_workers=WORKERS) as pool:
        results = list(pool.map(give, range(WORKERS)))

    assert results.count("given") == 1
    assert results.count("cooldown") == WORKERS - 1
    assert cookie_balance(guild_id=GUILD, member_id=RECEIVER) == 1
    assert CookieLedger.objects.filter(guild_id=GUILD).count() == 1
