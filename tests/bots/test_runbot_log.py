"""`manage.py runbot` against the fake Discord: `/settings log-channel` (slash and prefix), and what the
bot did reaching the log channel through the worker's poster, with who asked."""

from __future__ import annotations

import asyncio

import pytest

from bots.log_poster import LogPoster
from bots.rest import DiscordRest
from guilds.models import LogEntry, LogSettings
from tests.bots.conftest import ADMIN, ALICE, BOT, GUILD_ID, ROOT, wait_reply
from tests.bots.sweeper_fixtures import engine_connections_closed
from tests.bots.test_runbot_timers import answer_to
from tests.fake_discord import FakeDiscord, FakeGuild, pointed_at
from tests.fake_discord.models import EMBED_LINKS

pytestmark = pytest.mark.django_db(transaction=True)


def settings_slash(fake: FakeDiscord, user, options):
    channel = fake.guilds[GUILD_ID].text_channel.id
    return fake.send_slash(GUILD_ID, channel, user.id, "settings", options)


def post_pending(fake: FakeDiscord, settings) -> None:
    """One pass of the worker's poster (the code the timer engine runs), against the same fake."""
    settings.DISCORD_API_BASE, settings.DISCORD_TOKEN = fake.api_base, fake.token

    async def go() -> None:
        async with DiscordRest() as rest:
            while await LogPoster(rest).pass_once():
                pass

    with pointed_at(fake):
        asyncio.run(go())


def log_lines(fake: FakeDiscord, channel_id: int) -> list[str]:
    return [
        line
        for m in fake.messages
        if m["channel_id"] == channel_id
        for e in m["embeds"]
        if e.get("title") == "Activity log" or e.get("description")
        for line in e.get("description", "").split("\n")
    ]


def test_a_slash_log_channel_then_a_timer_set_and_expiry_are_posted_with_who_asked(fake, bot, guild, settings):
    logs, vip = guild.channel("bot-log"), guild.role("VIP")
    answer = answer_to(fake, settings_slash(fake, ADMIN, [("log-channel", {"channel": logs.id})]))
    assert f"<#{logs.id}>" in answer["content"] and "from now on" in answer["content"]
    assert LogSettings.objects.get(guild_id=GUILD_ID).channel_id == logs.id
    answer_to(
        fake,
        fake.send_slash(
            GUILD_ID, guild.text_channel.id, ADMIN.id, "timer", [("set", {"user": ALICE.id, "time": "30m", "role": vip.id})]
        ),
    )
    answer_to(
        fake,
        fake.send_slash(
            GUILD_ID, guild.text_channel.id, ADMIN.id, "timer", [("remove", {"user": ALICE.id, "time": "1h", "role": vip.id})]
        ),
    )
    fake.wait_for(lambda: LogEntry.objects.filter(kind="timer.expire").exists(), message="the expiry was not recorded")
    post_pending(fake, settings)
    lines = log_lines(fake, logs.id)
    assert len(lines) == 4, lines
    assert "Log channel set to" in lines[0]
    admin = (f"<@{ADMIN.id}>", "(@admin)")  # a mention, or the directory's name once the bot has flushed it
    assert "timer set to 30m by" in lines[1] and any(a in lines[1] for a in admin)
    assert "timer shortened by 1h by" in lines[2] and any(a in lines[2] for a in admin)
    assert "timer ran out; the role was removed" in lines[3]
    assert all(m["allowed_mentions"]["parse"] == [] for m in fake.messages if m["channel_id"] == logs.id)
    assert fake.unhandled == []


def test_prefix_log_channel_off_and_settings_show_it(fake, bot, guild):
    logs = guild.channel("bot-log")
    reply = wait_reply(fake, ADMIN, f"!!settings log-channel <#{logs.id}>", lambda m: "activity log" in m["content"], process=bot)
    assert "from now on" in reply["content"]
    shown = wait_reply(fake, ADMIN, "!!settings", lambda m: "log channel:" in m["content"], process=bot)
    assert f"log channel: <#{logs.id}>" in shown["content"]
    reply = wait_reply(fake, ADMIN, "!!settings log-channel off", lambda m: "activity log" in m["content"], process=bot)
    assert "no longer posted" in reply["content"]
    assert LogSettings.objects.get(guild_id=GUILD_ID).channel_id is None
    shown = wait_reply(fake, ADMIN, "!!settings", lambda m: "log channel:" in m["content"], process=bot)
    assert "log channel: off" in shown["content"]
    assert fake.unhandled == []


def test_it_refuses_a_member_without_manage_server(fake, bot, guild):
    logs = guild.channel("bot-log")
    reply = wait_reply(
        fake, ALICE, f"!!settings log-channel <#{logs.id}>", lambda m: "Manage Server" in m["content"], process=bot
    )
    assert reply["content"]
    answer = answer_to(fake, settings_slash(fake, ALICE, [("log-channel", {"channel": logs.id})]))
    assert "Manage Server" in answer["content"]
    assert not LogSettings.objects.exists() and not LogEntry.objects.exists()


@pytest.fixture
def no_embeds_guild() -> FakeGuild:
    """The bot may not embed links anywhere: a log channel there is refused."""
    guild = FakeGuild.typical(guild_id=GUILD_ID, bot_user=BOT, members=[ADMIN, ALICE], admin_ids=[ADMIN.id])
    guild.everyone_role.permissions &= ~EMBED_LINKS
    guild.bot_role.permissions &= ~EMBED_LINKS
    return guild


@pytest.fixture
def guild(request):
    if "no_embeds" in request.node.name:
        return request.getfixturevalue("no_embeds_guild")
    from tests.bots.conftest import BOB, OTHER_BOT

    return FakeGuild.typical(guild_id=GUILD_ID, bot_user=BOT, members=[ADMIN, ALICE, BOB, OTHER_BOT], admin_ids=[ADMIN.id])


def test_it_refuses_a_channel_it_cannot_post_in_no_embeds(fake, bot, guild):
    logs = guild.channel("bot-log")
    answer = answer_to(fake, settings_slash(fake, ADMIN, [("log-channel", {"channel": logs.id})]))
    assert answer["content"] == f"I can't post the log in <#{logs.id}>: I need Embed Links there."
    assert not LogSettings.objects.exists() and not LogEntry.objects.exists()


__all__ = ["ROOT", "engine_connections_closed"]
