"""The cookie leaderboard's period switch and the cookie roles admin, in a real browser."""

from datetime import UTC, datetime

import pytest

from commands.models import CookieRole
from commands.services import cookie_give, cookie_set
from guilds.models import Guild, Member
from tests.browser.conftest import log_in, shot

pytestmark = pytest.mark.django_db(transaction=True)
GUILD = 434343434343434343


def test_it_switches_the_leaderboard_between_all_time_and_the_last_days(page, superuser):
    cookie_set(guild_id=GUILD, member_id=800, balance=250, actor_id=1)  # an admin's count: all time only
    for giver in range(1, 4):
        cookie_give(guild_id=GUILD, giver_id=giver, receiver_id=900)
    cookie_give(guild_id=GUILD, giver_id=1, receiver_id=901)
    cookie_give(guild_id=GUILD, giver_id=2, receiver_id=902)
    Guild.objects.create(guild_id=GUILD, name="Cookie Club")
    Member.objects.create(guild_id=GUILD, user_id=900, username="alice", global_name="Alice")
    Member.objects.create(guild_id=GUILD, user_id=800, username="mod", nick="The Mod")
    Member.objects.create(guild_id=GUILD, user_id=902, username="gone", left_at=datetime.now(UTC))
    log_in(page, superuser)
    page.goto(f"/admin/ops/leaderboard/{GUILD}/")
    page.wait_for_selector("#result_list")
    all_time = page.inner_text("#result_list")
    assert all_time.index("The Mod (@mod)") < all_time.index("Alice (@alice)") and "902" not in all_time
    shot(page, "leaderboard-all-time")
    page.click("text=last 7 days")
    page.wait_for_selector("strong[aria-current=page]:has-text('last 7 days')")
    week = page.inner_text("#result_list")
    assert "The Mod" not in week and week.index("Alice (@alice)") < week.index("901") and "902" not in week
    assert "Cookie leaderboard of Cookie Club, last 7 days" in page.inner_text("#content")
    page.fill("#id_member", "901")
    page.click("form:has(#id_member) input[type=submit]")
    page.wait_for_selector("text=ranked 2 (last 7 days)")
    shot(page, "leaderboard-7-days")


def test_it_adds_a_cookie_role_from_the_dashboard(page, superuser):
    log_in(page, superuser)
    page.goto("/admin/commands/cookierole/add/")
    page.fill("#id_guild_id", str(GUILD))
    page.fill("#id_threshold", "0")
    page.fill("#id_role_id", "555")
    page.click("input[name=_save]")
    page.wait_for_selector(".errorlist")
    assert "from 1 to" in page.inner_text(".errorlist")
    page.fill("#id_threshold", "10")
    page.click("input[name=_save]")
    page.wait_for_selector(".messagelist")
    shot(page, "cookie-roles")
    assert list(CookieRole.objects.values_list("guild_id", "threshold", "role_id")) == [(GUILD, 10, 555)]
