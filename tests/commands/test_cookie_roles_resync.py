"""A change of a guild's cookie roles or mode queues one guild-wide sync; the walk's pages and reach."""

from __future__ import annotations

from datetime import UTC, datetime

import pytest
from django.db import connection
from django_q.models import OrmQ

from commands.errors import CookieRoleInvalid, CookieRoleMissing
from commands.models import CookieBalance
from commands.notify import cookie_roles_resync_done, cookie_roles_resync_generation
from commands.selectors import cookie_roles_reach, cookie_roles_resync_page, cookie_roles_resync_rows
from commands.services import cookie_role_add, cookie_role_remove, guild_settings_update
from guilds.models import Member
from tests.conftest import GUILD, OTHER_GUILD

pytestmark = pytest.mark.django_db
REGULAR, VETERAN = 501, 502


def queued() -> list[tuple]:
    return [q.task["args"] for q in OrmQ.objects.order_by("id") if q.task["func"] == "bots.cookie_roles.cookie_roles_resync"]


def test_each_change_queues_one_sync_on_commit_and_carries_what_to_take(django_capture_on_commit_callbacks):
    with django_capture_on_commit_callbacks(execute=True):
        cookie_role_add(guild_id=GUILD, threshold=10, role_id=REGULAR, actor_id=1)
    assert queued() == [(GUILD, 1, [], None)]
    with django_capture_on_commit_callbacks(execute=True):
        cookie_role_add(guild_id=GUILD, threshold=10, role_id=REGULAR, actor_id=1)  # nothing changed
        guild_settings_update(guild_id=GUILD, cookie_roles_keep_all=True)  # already so
        guild_settings_update(guild_id=GUILD, prefix="?")
    assert len(queued()) == 1
    with django_capture_on_commit_callbacks(execute=True):
        cookie_role_add(guild_id=GUILD, threshold=20, role_id=REGULAR, actor_id=1)  # moved: walk from 10
    with django_capture_on_commit_callbacks(execute=True):
        cookie_role_add(guild_id=GUILD, threshold=50, role_id=VETERAN, actor_id=1)
        cookie_role_remove(guild_id=GUILD, role_id=VETERAN)
    with django_capture_on_commit_callbacks(execute=True):
        guild_settings_update(guild_id=GUILD, cookie_roles_keep_all=False)
    assert queued()[1:] == [
        (GUILD, 2, [[10, REGULAR]], None),
        (GUILD, 3, [[10, REGULAR]], None),
        (GUILD, 4, [[10, REGULAR], [50, VETERAN]], None),
        (GUILD, 5, [[10, REGULAR], [50, VETERAN]], None),
    ]
    assert cookie_roles_resync_generation(guild_id=GUILD) == 5
    cookie_roles_resync_done(guild_id=GUILD, generation=4)  # superseded: what to take stays for the newest
    with django_capture_on_commit_callbacks(execute=True):
        cookie_role_add(guild_id=GUILD, threshold=5, role_id=VETERAN, actor_id=1)
    assert queued()[-1] == (GUILD, 6, [[10, REGULAR], [50, VETERAN]], None)
    cookie_roles_resync_done(guild_id=GUILD, generation=6)  # the newest finished: the roles were taken
    with django_capture_on_commit_callbacks(execute=True):
        cookie_role_remove(guild_id=GUILD, role_id=VETERAN)
    assert queued()[-1] == (GUILD, 7, [[5, VETERAN]], None)
    assert cookie_roles_resync_generation(guild_id=OTHER_GUILD) is None


def test_bad_input_queues_nothing(django_capture_on_commit_callbacks):
    with django_capture_on_commit_callbacks(execute=True):
        with pytest.raises(CookieRoleInvalid):
            cookie_role_add(guild_id=GUILD, threshold=0, role_id=REGULAR, actor_id=1)
        with pytest.raises(CookieRoleMissing):
            cookie_role_remove(guild_id=GUILD, role_id=REGULAR)
    assert queued() == []


def test_the_walk_pages_highest_first_down_to_the_floor_without_members_who_left():
    counts = {1: 50, 2: 30, 3: 30, 4: 12, 5: 9, 6: 40, 7: 30}
    CookieBalance.objects.bulk_create(CookieBalance(guild_id=GUILD, member_id=m, balance=b) for m, b in counts.items())
    CookieBalance.objects.create(guild_id=OTHER_GUILD, member_id=1, balance=99)
    Member.objects.create(guild_id=GUILD, user_id=6, left_at=datetime.now(UTC))
    Member.objects.create(guild_id=GUILD, user_id=7)  # seen, still here
    pages, after = [], None
    while page := cookie_roles_resync_page(guild_id=GUILD, floor=10, after=after, size=2):
        pages.append(page)
        after = (page[-1][1], page[-1][0])
    assert pages == [[(1, 50), (2, 30)], [(3, 30), (7, 30)], [(4, 12)]]
    assert cookie_roles_reach(guild_id=GUILD, floor=10) == 5
    assert cookie_roles_reach(guild_id=GUILD, floor=31) == 1


def test_the_walk_reads_the_leaderboard_index():
    CookieBalance.objects.bulk_create(
        [CookieBalance(guild_id=g, member_id=m, balance=m % 97) for g in range(1, 6) for m in range(2000)], batch_size=2000
    )
    Member.objects.bulk_create(Member(guild_id=3, user_id=m, left_at=datetime.now(UTC)) for m in range(0, 2000, 50))
    with connection.cursor() as cursor:
        cursor.execute("ANALYZE")
    plan = cookie_roles_resync_rows(guild_id=3, floor=10, after=(50, 7))[:100].explain()
    assert "cookie_leaderboard" in plan, plan
