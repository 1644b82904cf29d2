"""The custom command's Preview panel and restriction pickers, in a real browser."""

import pytest

from commands.models import CustomCommand
from commands.services import command_create
from guilds.models import Channel, Guild, Role
from tests.browser.conftest import log_in, shot

pytestmark = pytest.mark.django_db(transaction=True)
GUILD = 424242424242424242
VIP, BOTS = 424242424242420001, 424242424242420002


def test_it_previews_the_reply_as_it_is_typed(page, superuser):
    command = command_create(guild_id=GUILD, name="welcome", template="Welcome {user}!", author_id=None)
    Guild.objects.create(guild_id=GUILD, name="Cozy Corner")
    log_in(page, superuser)
    errors: list[str] = []
    page.on("console", lambda message: errors.append(message.text) if message.type == "error" else None)
    page.goto(f"/admin/commands/customcommand/{command.pk}/change/")
    panel = page.locator("#command-preview .command-preview-text")
    assert panel.inner_text() == "Welcome @Alice!"
    page.fill("#id_template", "Hi {user.name}, welcome to {guild}! You said: {args}. {cookies} cookies.")
    page.locator("#command-preview .command-preview-text", has_text="Hi Alice, welcome").wait_for()
    assert panel.inner_text() == "Hi Alice, welcome to Cozy Corner! You said: first second third. 42 cookies."
    shot(page, "command-preview")
    page.fill("#id_template", "Broken {0.__class__}")
    error = page.locator("#command-preview .command-preview-error")
    error.wait_for(state="visible")
    assert "not a placeholder I know" in error.inner_text()
    assert not panel.is_visible()
    shot(page, "command-preview-error")
    assert errors == []  # nothing refused by the CSP, no script failing
    assert CustomCommand.objects.get(pk=command.pk).template == "Welcome {user}!"  # a preview saves nothing


def test_it_picks_roles_and_channels_by_name(page, superuser):
    command = command_create(guild_id=GUILD, name="vip", template="For VIPs", author_id=None)
    Role.objects.create(guild_id=GUILD, role_id=VIP, name="VIP")
    Role.objects.create(guild_id=GUILD, role_id=VIP + 10, name="Muted")
    Channel.objects.create(guild_id=GUILD, channel_id=BOTS, name="bot-commands")
    log_in(page, superuser)
    page.goto(f"/admin/commands/customcommand/{command.pk}/change/")
    page.select_option("#id_allowed_role_ids_from", str(VIP))
    page.click("#id_allowed_role_ids_add")
    page.select_option("#id_allowed_channel_ids_from", str(BOTS))
    page.click("#id_allowed_channel_ids_add")
    shot(page, "command-restrictions")
    page.click("input[name=_continue]")
    page.wait_for_selector(".messagelist")
    stored = CustomCommand.objects.get(pk=command.pk)
    assert (stored.allowed_role_ids, stored.allowed_channel_ids) == ([VIP], [BOTS])
    assert page.locator("#id_allowed_role_ids_to option").all_inner_texts() == ["@VIP"]
