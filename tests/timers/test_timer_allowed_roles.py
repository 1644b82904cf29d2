"""The allowed-role list: none listed allows any role; once one is, only listed roles."""

from __future__ import annotations

import pytest

from tests.conftest import GUILD, OTHER_GUILD
from tests.timers.shortcuts import ACTOR, OTHER_ROLE, ROLE, add_time, hours, set_timer
from timers.errors import RoleNotAllowed, TimerError
from timers.models import TimedRole, TimerEvent
from timers.services import allowed_role_add, allowed_role_remove

pytestmark = pytest.mark.django_db


def test_it_allows_any_role_while_none_is_listed():
    set_timer(hours(1), role=ROLE)
    set_timer(hours(1), role=OTHER_ROLE)

    assert TimedRole.objects.count() == 2


def test_it_refuses_unlisted_roles_once_one_is_listed():
    allowed_role_add(guild_id=GUILD, role_id=ROLE, actor_id=ACTOR)

    with pytest.raises(RoleNotAllowed) as info:
        set_timer(hours(1), role=OTHER_ROLE)
    assert f"<@&{OTHER_ROLE}>" in str(info.value)
    with pytest.raises(RoleNotAllowed):
        add_time(hours(1), role=OTHER_ROLE)

    assert not TimedRole.objects.exists()
    assert not TimerEvent.objects.exists()
    set_timer(hours(1), role=ROLE)
    assert TimedRole.objects.filter(role_id=ROLE).count() == 1


def test_it_applies_a_guilds_list_to_that_guild_only():
    allowed_role_add(guild_id=OTHER_GUILD, role_id=ROLE, actor_id=ACTOR)

    set_timer(hours(1), role=OTHER_ROLE)

    assert TimedRole.objects.filter(guild_id=GUILD, role_id=OTHER_ROLE).count() == 1
    with pytest.raises(RoleNotAllowed):
        set_timer(hours(1), role=OTHER_ROLE, guild=OTHER_GUILD)


def test_it_allows_any_role_again_when_the_list_is_emptied():
    allowed_role_add(guild_id=GUILD, role_id=ROLE, actor_id=ACTOR)
    allowed_role_remove(guild_id=GUILD, role_id=ROLE)

    set_timer(hours(1), role=OTHER_ROLE)

    assert TimedRole.objects.filter(role_id=OTHER_ROLE).count() == 1


def test_it_refuses_to_list_a_role_twice_or_unlist_a_missing_one():
    allowed_role_add(guild_id=GUILD, role_id=ROLE, actor_id=ACTOR)

    with pytest.raises(TimerError):
        allowed_role_add(guild_id=GUILD, role_id=ROLE, actor_id=ACTOR)
    with pytest.raises(TimerError):
        allowed_role_remove(guild_id=GUILD, role_id=OTHER_ROLE)
