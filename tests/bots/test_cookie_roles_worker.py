"""The worker's task that makes cookie roles match counts changed on the web or API, against the fake Discord."""

from __future__ import annotations

import pytest

from bots.cookie_roles import cookie_roles_apply
from commands.services import cookie_role_add, cookie_set, guild_settings_update
from tests.bots.conftest import ADMIN, ALICE, BOB, GUILD_ID
from tests.bots.sweeper_fixtures import discord_fake  # the fixture

pytestmark = pytest.mark.django_db(transaction=True)
__all__ = ["discord_fake"]


def test_it_grants_and_takes_by_the_count_when_the_task_runs(discord_fake, guild):
    fake = discord_fake
    member_role, vip = guild.role("Member"), guild.role("VIP")
    cookie_role_add(guild_id=GUILD_ID, threshold=5, role_id=member_role.id, actor_id=None)
    cookie_role_add(guild_id=GUILD_ID, threshold=10, role_id=vip.id, actor_id=None)
    cookie_set(guild_id=GUILD_ID, member_id=ALICE.id, balance=12, actor_id=ADMIN.id)
    assert cookie_roles_apply(GUILD_ID, [ALICE.id, BOB.id]) == {"members": 2, "added": 2, "removed": 0, "refused": 0, "gone": 0}
    assert {member_role.id, vip.id} <= fake.member_roles(GUILD_ID, ALICE.id)
    assert all(c["reason"] == "Guildhall cookie roles: 12 cookies" for c in fake.role_changes)
    # Highest only, and the count moved again before the task ran: the task uses the count now.
    guild_settings_update(guild_id=GUILD_ID, cookie_roles_keep_all=False)
    cookie_set(guild_id=GUILD_ID, member_id=ALICE.id, balance=7, actor_id=ADMIN.id)
    assert cookie_roles_apply(GUILD_ID, [ALICE.id])["removed"] == 1
    assert member_role.id in fake.member_roles(GUILD_ID, ALICE.id) and vip.id not in fake.member_roles(GUILD_ID, ALICE.id)
    assert cookie_roles_apply(GUILD_ID, [ALICE.id]) == {"members": 1, "added": 0, "removed": 0, "refused": 0, "gone": 0}
    fake.member_leave(GUILD_ID, ALICE.id)
    assert cookie_roles_apply(GUILD_ID, [ALICE.id])["gone"] == 1
    assert fake.unhandled == []


def test_the_bot_corrects_a_messages_roles_by_what_it_set_since():
    from bots.cookie_roles import RecentChanges

    recent = RecentChanges()
    assert recent.held(1, 2, [5]) == {5}
    recent.record(1, 2, added={7}, removed={5})
    assert recent.held(1, 2, [5]) == {7}
    assert recent.held(1, 2, None) is None  # unknown stays unknown: every managed role is set
    assert recent.held(1, 3, [5]) == {5}
