"""Custom commands and the cookie leaderboard, in a real browser."""

import pytest

from commands.models import CustomCommand
from commands.services import cookie_give
from tests.browser.conftest import log_in, shot

pytestmark = pytest.mark.django_db(transaction=True)
GUILD = 424242424242424242


def test_it_creates_a_custom_command_from_the_dashboard(page, superuser):
    log_in(page, superuser)
    page.goto("/admin/commands/customcommand/add/")
    page.fill("#id_guild_id", str(GUILD))
    page.fill("#id_name", "Welcome")
    page.fill("#id_template", "Welcome {user}! Read {0}.")
    shot(page, "command-add")
    page.click("input[name=_save]")
    page.wait_for_selector(".messagelist")
    assert "was added successfully" in page.inner_text(".messagelist")
    shot(page, "command-list")
    saved = CustomCommand.objects.get(guild_id=GUILD, name="welcome")
    assert saved.template == "Welcome {user}! Read {0}."


def test_it_shows_the_template_error_and_saves_nothing(page, superuser):
    log_in(page, superuser)
    page.goto("/admin/commands/customcommand/add/")
    page.fill("#id_guild_id", str(GUILD))
    page.fill("#id_name", "evil")
    page.fill("#id_template", "{0.__class__}")
    page.click("input[name=_save]")
    page.wait_for_selector(".errorlist")
    assert "not a placeholder I know" in page.inner_text(".errorlist")
    shot(page, "command-refused")
    assert not CustomCommand.objects.filter(name="evil").exists()


def test_it_shows_the_cookie_leaderboard(page, superuser):
    for giver in range(1, 4):
        cookie_give(guild_id=GUILD, giver_id=giver, receiver_id=900)
    cookie_give(guild_id=GUILD, giver_id=1, receiver_id=901)
    log_in(page, superuser)
    page.goto(f"/admin/ops/leaderboard/{GUILD}/")
    page.wait_for_selector("#result_list")
    text = page.inner_text("#result_list")
    assert text.index("900") < text.index("901")
    shot(page, "leaderboard")
