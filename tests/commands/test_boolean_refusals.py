"""``True`` is an ``int`` in Python (``True == 1``): services that take a number refuse it, and change nothing."""

from __future__ import annotations

import pytest

from commands.errors import CookieError, SettingsInvalid
from commands.models import CookieBalance, CookieLedger, GuildSettings
from commands.services import cookie_give, cookie_set, guild_settings_update
from tests.conftest import GUILD
from timers.errors import TimerError
from timers.models import AllowedRole, RoleReport, TimerSettings
from timers.services import allowed_role_add, report_set, timer_settings_update, timer_warnings_set

pytestmark = pytest.mark.django_db


@pytest.mark.parametrize(
    "field",
    ["cookie_pair_cooldown_seconds", "cookie_daily_cap", "cookie_message_cap", "manager_role_id"],
)
@pytest.mark.parametrize("value", [True, False])
def test_guild_settings_refuse_a_boolean_for_a_number(field, value):
    guild_settings_update(guild_id=GUILD, cookie_pair_cooldown_seconds=30)
    with pytest.raises(SettingsInvalid):
        guild_settings_update(guild_id=GUILD, **{field: value})
    stored = GuildSettings.objects.get(guild_id=GUILD)
    assert (stored.cookie_pair_cooldown_seconds, stored.cookie_daily_cap, stored.cookie_message_cap) == (30, 50, 5)
    assert stored.manager_role_id is None


@pytest.mark.parametrize("field", ["cookie_allow_negative", "cookie_dm_receiver", "public_leaderboard"])
def test_guild_settings_refuse_a_number_for_a_switch(field):
    with pytest.raises(SettingsInvalid, match="on or off"):
        guild_settings_update(guild_id=GUILD, **{field: 1})
    assert not GuildSettings.objects.exists()


def test_a_cookie_change_refuses_a_boolean_delta():
    with pytest.raises(CookieError, match="one at a time"):
        cookie_give(guild_id=GUILD, giver_id=1, receiver_id=2, delta=True)
    assert not CookieLedger.objects.exists()


@pytest.mark.parametrize("balance", [True, False])
def test_setting_a_cookie_count_refuses_a_boolean(balance):
    with pytest.raises(CookieError, match="whole number"):
        cookie_set(guild_id=GUILD, member_id=2, balance=balance, actor_id=1)
    assert not CookieBalance.objects.exists()


def test_the_timer_admin_role_refuses_a_boolean():
    with pytest.raises(TimerError):
        timer_settings_update(guild_id=GUILD, admin_role_id=True)
    assert not TimerSettings.objects.exists()


def test_warning_times_refuse_a_boolean():
    with pytest.raises(TimerError):
        timer_warnings_set(guild_id=GUILD, minutes=[10, True])
    assert not TimerSettings.objects.exists()


def test_allowed_roles_refuse_a_boolean():
    with pytest.raises(TimerError):
        allowed_role_add(guild_id=GUILD, role_id=True, actor_id=None)
    assert not AllowedRole.objects.exists()


def test_reports_refuse_a_boolean_interval():
    with pytest.raises(TimerError):
        report_set(guild_id=GUILD, role_id=7, channel_id=3, interval_minutes=True, actor_id=None)
    assert not RoleReport.objects.exists()
