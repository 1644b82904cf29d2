"""Cookie roles: thresholds, the wanted set as balances cross them, keep-all against highest, and racing gives."""

from __future__ import annotations

import threading
from concurrent.futures import ThreadPoolExecutor

import pytest
from django.db import connections

from commands.errors import CookieRoleInvalid, CookieRoleMissing
from commands.models import CookieRole
from commands.selectors import cookie_role_plan, cookie_roles_list
from commands.services import (
    CookieRolePlan,
    cookie_give,
    cookie_reset,
    cookie_role_add,
    cookie_role_remove,
    cookie_roles_wanted,
    cookie_set,
    guild_settings_update,
)
from tests.conftest import GUILD

REGULAR, VETERAN, LEGEND = 501, 502, 503
THRESHOLDS = [(10, REGULAR), (50, VETERAN), (100, LEGEND)]


@pytest.mark.parametrize(
    ("balance", "keep_all", "wanted"),
    [
        (0, True, set()),
        (9, True, set()),
        (10, True, {REGULAR}),
        (75, True, {REGULAR, VETERAN}),
        (100, True, {REGULAR, VETERAN, LEGEND}),
        (-5, True, set()),
        (9, False, set()),
        (10, False, {REGULAR}),
        (75, False, {VETERAN}),
        (10**12, False, {LEGEND}),
    ],
)
def test_the_wanted_roles_follow_the_balance(balance, keep_all, wanted):
    assert cookie_roles_wanted(balance, THRESHOLDS, keep_all) == wanted


def test_a_plan_says_what_to_add_and_take():
    plan = CookieRolePlan(balance=75, wanted=frozenset({VETERAN}), managed=frozenset({REGULAR, VETERAN, LEGEND}))
    assert plan.changes([REGULAR, 999]) == ({VETERAN}, {REGULAR})  # 999 is not a cookie role: untouched
    assert plan.changes([VETERAN]) == (set(), set())
    assert plan.changes(None) == ({VETERAN}, {REGULAR, LEGEND})


@pytest.mark.django_db
def test_it_keeps_thresholds_and_refuses_bad_ones():
    assert cookie_role_add(guild_id=GUILD, threshold=10, role_id=REGULAR, actor_id=1)[1] is True
    row, created = cookie_role_add(guild_id=GUILD, threshold=20, role_id=REGULAR, actor_id=1)
    assert not created and row.threshold == 20 and CookieRole.objects.count() == 1
    for threshold in (0, -1, True, "10", 10**16):
        with pytest.raises(CookieRoleInvalid):
            cookie_role_add(guild_id=GUILD, threshold=threshold, role_id=VETERAN, actor_id=1)
    with pytest.raises(CookieRoleInvalid):
        cookie_role_add(guild_id=GUILD, threshold=5, role_id=GUILD, actor_id=1)  # @everyone
    for n in range(24):
        cookie_role_add(guild_id=GUILD, threshold=100 + n, role_id=9000 + n, actor_id=1)
    with pytest.raises(CookieRoleInvalid, match="at most 25"):
        cookie_role_add(guild_id=GUILD, threshold=999, role_id=LEGEND, actor_id=1)
    cookie_role_remove(guild_id=GUILD, role_id=REGULAR)
    with pytest.raises(CookieRoleMissing):
        cookie_role_remove(guild_id=GUILD, role_id=REGULAR)
    assert [r.role_id for r in cookie_roles_list(guild_id=GUILD)][:2] == [9000, 9001]


@pytest.mark.django_db
def test_changes_carry_the_plan_across_thresholds_up_and_down():
    guild_settings_update(guild_id=GUILD, cookie_pair_cooldown_seconds=0)
    assert cookie_give(guild_id=GUILD, giver_id=1, receiver_id=7).roles is None  # no cookie roles: no plan, no reads
    for threshold, role in THRESHOLDS[:2]:
        cookie_role_add(guild_id=GUILD, threshold=threshold, role_id=role, actor_id=1)
    cookie_set(guild_id=GUILD, member_id=7, balance=9, actor_id=1)
    change = cookie_give(guild_id=GUILD, giver_id=1, receiver_id=7)
    assert change.balance == 10 and change.roles is not None and change.roles.wanted == {REGULAR}
    assert cookie_give(guild_id=GUILD, giver_id=2, receiver_id=7, delta=-1).roles.wanted == frozenset()
    assert cookie_set(guild_id=GUILD, member_id=7, balance=60, actor_id=1).roles.wanted == {REGULAR, VETERAN}
    guild_settings_update(guild_id=GUILD, cookie_roles_keep_all=False)
    assert cookie_role_plan(guild_id=GUILD, member_id=7).wanted == {VETERAN}
    cookie_reset(guild_id=GUILD, actor_id=1, member_id=7)
    assert cookie_role_plan(guild_id=GUILD, member_id=7).wanted == frozenset()


@pytest.mark.django_db(transaction=True)
def test_racing_gives_near_a_threshold_end_on_the_plan_of_the_final_balance():
    guild_settings_update(guild_id=GUILD, cookie_pair_cooldown_seconds=0, cookie_daily_cap=None)
    cookie_role_add(guild_id=GUILD, threshold=10, role_id=REGULAR, actor_id=1)
    cookie_set(guild_id=GUILD, member_id=7, balance=5, actor_id=1)
    barrier = threading.Barrier(10, timeout=30)

    def give(giver: int):
        try:
            barrier.wait()
            return cookie_give(guild_id=GUILD, giver_id=giver, receiver_id=7, delta=1 if giver % 3 else -1)
        finally:
            connections.close_all()

    with ThreadPoolExecutor(max_workers=10) as pool:
        changes = list(pool.map(give, range(101, 111)))  # 102, 105 and 108 take
    # Each change's plan matches its own balance; the last one read matches the final count.
    for change in changes:
        assert change.roles.wanted == ({REGULAR} if change.balance >= 10 else frozenset())
    final = cookie_role_plan(guild_id=GUILD, member_id=7)
    assert final.balance == 5 + 7 - 3
    assert final.wanted == frozenset()


@pytest.mark.django_db
def test_a_guild_wide_reset_queues_the_worker_for_the_members_who_held_a_role(django_capture_on_commit_callbacks):
    from django_q.models import OrmQ

    cookie_role_add(guild_id=GUILD, threshold=10, role_id=REGULAR, actor_id=1)
    for member, count in ((7, 12), (8, 3), (9, 10)):
        cookie_set(guild_id=GUILD, member_id=member, balance=count, actor_id=1)
    with django_capture_on_commit_callbacks(execute=True):
        assert cookie_reset(guild_id=GUILD, actor_id=1, sync_roles_later=True) == 3
    assert [(q.task["func"], q.task["args"]) for q in OrmQ.objects.all()] == [
        ("bots.cookie_roles.cookie_roles_apply", (GUILD, [7, 9]))
    ]
