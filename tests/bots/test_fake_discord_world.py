"""The fake Discord's world changes (members, guild, roles, channels) seen by the real discord.py.

A plain ``commands.Bot`` with the members intent and its member cache keeps what the
events say, so each change is checked against discord.py's own reading of the payload.
"""

from __future__ import annotations

import discord
import pytest
from discord.ext import commands

from tests.fake_discord import BotThread, FakeDiscord, FakeGuild, FakeUser

GUILD = 100000000000000011
OTHER = 100000000000000022
BOT = FakeUser(id=900000000000000011, name="Guildhall", bot=True)
ALICE = FakeUser(id=800000000000000011, name="alice", global_name="Alice")
BOB = FakeUser(id=800000000000000012, name="bob")
CAROL = FakeUser(id=800000000000000013, name="carol")


def make_bot() -> commands.Bot:
    intents = discord.Intents.default()
    intents.members = True
    bot = commands.Bot(command_prefix="!!", intents=intents, guild_ready_timeout=0.1, help_command=None)
    bot.events = []

    for name in ("member_join", "member_remove", "member_update", "guild_update", "guild_remove"):

        async def record(*args, _name=name) -> None:
            bot.events.append(_name)

        bot.add_listener(record, f"on_{name}")
    return bot


def events(runner: BotThread) -> list[str]:
    return list(runner.bot.events)


@pytest.fixture
def world():
    guilds = [
        FakeGuild.typical(guild_id=GUILD, bot_user=BOT, members=[ALICE, BOB], admin_ids=[ALICE.id], name="My Server"),
        FakeGuild.typical(guild_id=OTHER, bot_user=BOT, members=[BOB], name="Other Place"),
    ]
    with FakeDiscord(guilds=guilds, bot_user=BOT) as fake, BotThread(fake, make_bot) as runner:
        runner.wait_until_ready(5)
        yield fake, runner


def test_it_sends_members_joining_changing_and_leaving(world):
    fake, runner = world
    bot = runner.bot
    vip = fake.guilds[GUILD].role("VIP")
    fake.member_join(GUILD, CAROL, roles=[vip.id], nick="Caz")
    fake.wait_for(lambda: bot.get_guild(GUILD).get_member(CAROL.id), timeout=3)
    carol = bot.get_guild(GUILD).get_member(CAROL.id)
    assert carol.nick == "Caz" and [r.id for r in carol.roles[1:]] == [vip.id]

    fake.member_update(GUILD, CAROL.id, nick=None, global_name="Carol C.")
    fake.wait_for(lambda: bot.get_guild(GUILD).get_member(CAROL.id).nick is None, timeout=3)
    assert bot.get_guild(GUILD).get_member(CAROL.id).display_name == "Carol C."

    fake.member_leave(GUILD, CAROL.id)
    fake.wait_for(lambda: bot.get_guild(GUILD).get_member(CAROL.id) is None, timeout=3)
    assert CAROL.id not in fake.guilds[GUILD].members
    with pytest.raises(discord.NotFound):
        runner.run(bot.http.get_member(GUILD, CAROL.id))
    assert events(runner)[:3] == ["member_join", "member_update", "member_remove"]
    assert fake.unhandled == []


def test_it_renames_the_guild_roles_and_channels(world):
    fake, runner = world
    guild = runner.bot.get_guild(GUILD)
    fake.guild_update(GUILD, name="Renamed")
    booster = fake.role_create(GUILD, "Booster")
    lounge = fake.channel_create(GUILD, "lounge")
    fake.wait_for(lambda: guild.get_channel(lounge.id) is not None, timeout=3)
    guild = runner.bot.get_guild(GUILD)  # GUILD_UPDATE replaces nothing, but read afresh
    assert guild.name == "Renamed" and guild.get_role(booster.id).name == "Booster"
    assert runner.bot.get_guild(OTHER).name == "Other Place"

    fake.role_update(GUILD, booster.id, name="Server Booster")
    fake.channel_update(GUILD, lounge.id, name="the-lounge")
    fake.wait_for(lambda: guild.get_channel(lounge.id).name == "the-lounge", timeout=3)
    assert guild.get_role(booster.id).name == "Server Booster"

    fake.role_delete(GUILD, booster.id)
    fake.channel_delete(GUILD, lounge.id)
    fake.wait_for(lambda: guild.get_channel(lounge.id) is None, timeout=3)
    assert guild.get_role(booster.id) is None
    assert [r["name"] for r in runner.run(runner.bot.http.get_roles(GUILD))].count("Server Booster") == 0
    assert fake.unhandled == []


def test_it_adds_and_removes_the_bot_from_guilds(world):
    fake, runner = world
    third = FakeGuild.typical(guild_id=100000000000000033, bot_user=BOT, members=[CAROL], name="Third")
    fake.guild_join(third)
    fake.wait_for(lambda: runner.bot.get_guild(third.id) is not None, timeout=3)
    fake.guild_leave(OTHER)
    fake.wait_for(lambda: runner.bot.get_guild(OTHER) is None, timeout=3)
    assert "guild_remove" in events(runner) and fake.unhandled == []


def test_it_lists_members_by_user_id_in_pages(world):
    fake, runner = world
    http = runner.bot.http
    first = runner.run(http.get_members(GUILD, 2, None))
    assert [int(m["user"]["id"]) for m in first] == sorted([ALICE.id, BOB.id])
    rest = runner.run(http.get_members(GUILD, 1000, int(first[-1]["user"]["id"])))
    assert [int(m["user"]["id"]) for m in rest] == [BOT.id]
    one = runner.run(http.get_member(GUILD, ALICE.id))
    assert one["user"]["global_name"] == "Alice"
    with pytest.raises(discord.HTTPException) as refused:
        runner.run(http.request(discord.http.Route("GET", "/guilds/{guild_id}/members", guild_id=GUILD), params={"limit": 0}))
    assert refused.value.status == 400 and refused.value.code == 50035
    assert fake.unhandled == []
