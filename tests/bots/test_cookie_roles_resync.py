"""The worker's guild-wide cookie roles sync after thresholds or the mode change, against the fake Discord."""

from __future__ import annotations

from datetime import UTC, datetime

import pytest
from django_q.models import OrmQ

from bots.cookie_roles import RESYNC_REASON, cookie_roles_resync
from commands.models import CookieBalance
from commands.notify import cookie_roles_resync_generation
from commands.services import cookie_role_add, cookie_role_remove, guild_settings_update
from guilds.models import Member
from tests.bots.conftest import GUILD_ID
from tests.bots.sweeper_fixtures import discord_fake  # the fixture
from tests.fake_discord import FakeUser

pytestmark = pytest.mark.django_db(transaction=True)
__all__ = ["discord_fake"]
RESYNC = "bots.cookie_roles.cookie_roles_resync"


def run_queued() -> list[dict | str]:
    """Run the queued guild-wide syncs (and the continuations they queue) as the worker would, oldest first."""
    results = []
    while True:
        queued = [q for q in OrmQ.objects.order_by("id") if q.task["func"] == RESYNC]
        if not queued:
            return results
        q = queued[0]
        args = q.task["args"]
        q.delete()
        results.append(cookie_roles_resync(*args))


@pytest.fixture
def members(discord_fake):
    """30 members at 0, 2, 4 … 58 cookies; the one at 40 left the server (the directory says so)."""
    users = [FakeUser(id=900_000_000_000_000_100 + i, name=f"m{i}") for i in range(30)]
    for user in users:
        discord_fake.member_join(GUILD_ID, user)
    CookieBalance.objects.bulk_create(
        CookieBalance(guild_id=GUILD_ID, member_id=u.id, balance=2 * i) for i, u in enumerate(users)
    )
    left = users[20]
    Member.objects.create(guild_id=GUILD_ID, user_id=left.id, username=left.name, left_at=datetime.now(UTC))
    OrmQ.objects.all().delete()
    return {u.id: 2 * i for i, u in enumerate(users) if u.id != left.id}, left.id


def holders(fake, role_id: int, ids) -> set[int]:
    return {m for m in ids if role_id in fake.member_roles(GUILD_ID, m)}


def test_adding_removing_and_the_mode_reach_the_members_who_already_qualify(discord_fake, guild, members):
    fake, (balances, left) = discord_fake, members
    regular, vip = guild.role("Member").id, guild.role("VIP").id
    cookie_role_add(guild_id=GUILD_ID, threshold=20, role_id=regular, actor_id=None)
    [figures] = run_queued()
    at_20 = {m for m, b in balances.items() if b >= 20}
    assert len(at_20) == 19 and figures["members"] == 19 and figures["added"] == 19
    assert holders(fake, regular, balances) == at_20 and regular not in fake.member_roles(GUILD_ID, left)
    assert all(c["reason"] == RESYNC_REASON and c["method"] == "PUT" for c in fake.role_changes)
    assert {c["user_id"] for c in fake.role_changes} == at_20  # nobody below the threshold, nor who left, was touched

    # The same threshold again queues nothing; a second run (a retry after a kill) changes nothing.
    cookie_role_add(guild_id=GUILD_ID, threshold=20, role_id=regular, actor_id=None)
    assert run_queued() == []
    again = cookie_roles_resync(GUILD_ID, cookie_roles_resync_generation(guild_id=GUILD_ID), [], None)
    assert again == {"members": 19, "added": 0, "removed": 0, "refused": 0, "gone": 0, "superseded": 0}

    # Keep-all with a second threshold, then highest only: the lower role is taken above the higher threshold.
    cookie_role_add(guild_id=GUILD_ID, threshold=50, role_id=vip, actor_id=None)
    run_queued()
    at_50 = {m for m, b in balances.items() if b >= 50}
    assert holders(fake, vip, balances) == at_50 and holders(fake, regular, balances) == at_20
    guild_settings_update(guild_id=GUILD_ID, cookie_roles_keep_all=False)
    [figures] = run_queued()
    assert figures["removed"] == len(at_50) == 5
    assert holders(fake, vip, balances) == at_50 and holders(fake, regular, balances) == at_20 - at_50

    # Removing a threshold role takes it from the members who reached it.
    before = len(fake.role_changes)
    cookie_role_remove(guild_id=GUILD_ID, role_id=vip)
    [figures] = run_queued()
    assert holders(fake, vip, balances) == set()
    # highest is now Member (20): members at 50+ get it back
    assert holders(fake, regular, balances) == at_20
    taken = [c for c in fake.role_changes[before:] if c["method"] == "DELETE"]
    assert {c["user_id"] for c in taken} == at_50 and all(c["role_id"] == vip for c in taken)
    assert fake.unhandled == []


def test_a_newer_change_supersedes_and_carries_the_roles_to_take(discord_fake, guild, members):
    fake, (balances, _left) = discord_fake, members
    regular, vip = guild.role("Member").id, guild.role("VIP").id
    cookie_role_add(guild_id=GUILD_ID, threshold=30, role_id=vip, actor_id=None)
    run_queued()
    at_30 = {m for m, b in balances.items() if b >= 30}
    assert holders(fake, vip, balances) == at_30
    cookie_role_remove(guild_id=GUILD_ID, role_id=vip)
    cookie_role_add(guild_id=GUILD_ID, threshold=10, role_id=regular, actor_id=None)
    first, second = run_queued()
    assert first["superseded"] == 1 and first["members"] == 0  # the older one stood down
    assert holders(fake, vip, balances) == set()  # the newer one took what the older one was to take
    assert holders(fake, regular, balances) == {m for m, b in balances.items() if b >= 10}
    assert second["removed"] == len(at_30)


def test_a_long_walk_goes_on_from_its_cursor_in_a_new_task(discord_fake, guild, members, settings):
    fake, (balances, _left) = discord_fake, members
    settings.Q_CLUSTER = {**settings.Q_CLUSTER, "timeout": 0}  # every run stops after one page
    settings.COOKIE_ROLES_SYNC_PAGE = 4
    regular = guild.role("Member").id
    cookie_role_add(guild_id=GUILD_ID, threshold=1, role_id=regular, actor_id=None)
    runs = run_queued()
    qualified = {m for m, b in balances.items() if b >= 1}
    assert len(qualified) == 28
    assert len(runs) == 8  # 7 pages of 4, each its own task from the cursor, and the one that finds no more
    assert [r["members"] for r in runs] == [4] * 7 + [0]
    assert holders(fake, regular, balances) == qualified
    assert sum(r["added"] for r in runs) == len(qualified)
    assert len(fake.role_changes) == len(qualified)  # no member was done twice across the pages


def test_a_member_gone_from_discord_before_the_directory_knew_is_passed_over(discord_fake, guild, members):
    fake, (balances, _left) = discord_fake, members
    gone = max(balances, key=balances.__getitem__)
    fake.member_leave(GUILD_ID, gone)
    cookie_role_add(guild_id=GUILD_ID, threshold=50, role_id=guild.role("VIP").id, actor_id=None)
    [figures] = run_queued()
    assert (figures["members"], figures["gone"], figures["added"]) == (4, 1, 4)
    assert gone not in {c["user_id"] for c in fake.role_changes}
