"""The fake Discord against the real discord.py: login, gateway, messages, roles, 429s, resume, slash commands.

Each test runs a real ``commands.Bot`` in a background thread (its own loop) pointed at a
FakeDiscord, and ends by checking that the bot called nothing the fake doesn't model.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import time
import urllib.request
from collections.abc import Iterator

import discord
import pytest
from discord import app_commands
from discord.ext import commands

from tests.fake_discord import BotThread, FakeDiscord, FakeGuild, FakeUser
from tests.fake_discord.models import shard_of
from tests.fake_discord.ratelimits import RateLimits

GUILD = 100000000000000001
BOT = FakeUser(id=900000000000000001, name="Guildhall", bot=True)
ALICE = FakeUser(id=800000000000000001, name="alice")
BOB = FakeUser(id=800000000000000002, name="bob")


def make_guild(guild_id: int = GUILD) -> FakeGuild:
    return FakeGuild.typical(guild_id=guild_id, bot_user=BOT, members=[ALICE, BOB], admin_ids=[ALICE.id])


def full_intents() -> discord.Intents:
    intents = discord.Intents.default()
    intents.members = True
    intents.message_content = True
    return intents


def make_bot(intents: discord.Intents | None = None, bot_class: type = commands.Bot, **options) -> commands.Bot:
    """The bot the tests drive: a prefix command, and slash commands synced in setup_hook."""
    bot = bot_class(
        command_prefix="!!",
        intents=intents or full_intents(),
        allowed_mentions=discord.AllowedMentions(everyone=False, roles=False),
        guild_ready_timeout=0.1,
        help_command=None,
        **options,
    )
    bot.seen = []

    @bot.command()
    async def ping(ctx: commands.Context) -> None:
        await ctx.send("pong")

    @bot.command()
    async def whisper(ctx: commands.Context) -> None:
        await ctx.author.send("psst")

    @bot.listen("on_message")
    async def remember(message: discord.Message) -> None:
        bot.seen.append(message)

    timer = app_commands.Group(name="timer", description="Timed roles")
    allowed = app_commands.Group(name="roles", description="Roles timers may use", parent=timer)

    @timer.command(name="set", description="Give a member a role for a while")
    async def timer_set(interaction: discord.Interaction, user: discord.Member, role: discord.Role, time: str) -> None:
        await interaction.response.send_message(f"{user.name} gets {role.name} for {time}")

    @allowed.command(name="add", description="Allow a role")
    async def roles_add(interaction: discord.Interaction, role: discord.Role) -> None:
        await interaction.response.defer(ephemeral=True)
        await interaction.followup.send(f"allowed {role.name}", ephemeral=True)

    @bot.tree.command(name="echo", description="Say it again")
    async def echo(interaction: discord.Interaction, text: str, times: int = 1) -> None:
        await interaction.response.send_message(" ".join([text] * times))

    @bot.tree.command(name="later", description="Answer after a while")
    async def later(interaction: discord.Interaction) -> None:
        await interaction.response.defer()
        await interaction.edit_original_response(content="done")

    bot.tree.add_command(timer)

    async def setup_hook() -> None:
        await bot.tree.sync()

    bot.setup_hook = setup_hook
    return bot


@contextlib.contextmanager
def ready_bot(fake: FakeDiscord, **bot_options) -> Iterator[BotThread]:
    """A bot from make_bot(**bot_options) running against ``fake``, ready."""
    with BotThread(fake, lambda: make_bot(**bot_options)) as runner:
        runner.wait_until_ready(5)
        yield runner


def pongs(fake: FakeDiscord) -> list[dict]:
    return [m for m in fake.messages if m["content"] == "pong"]


def test_it_logs_in_and_shows_the_guild():
    guild = make_guild()
    with FakeDiscord(guilds=[guild], bot_user=BOT, privileged_intents={"members", "message_content"}) as fake:
        with ready_bot(fake) as runner:
            assert fake.wait_for_identify(1) and fake.wait_for_ready_sent(1)
            seen = runner.bot.get_guild(GUILD)
            assert runner.bot.user.id == BOT.id
            assert seen.name == "Test Guild" and seen.member_count == 3 and len(seen.members) == 3
            assert seen.me.top_role.name == "Guildhall" and seen.me.guild_permissions.manage_roles
            assert seen.default_role.id == GUILD
            assert fake.identify_count == 1
        assert fake.unhandled == []


def test_it_answers_a_prefix_command_and_echoes_the_bots_own_message():
    guild = make_guild()
    with FakeDiscord(guilds=[guild], bot_user=BOT) as fake, ready_bot(fake) as runner:
        fake.send_message(GUILD, guild.text_channel.id, ALICE.id, "!!ping")
        fake.wait_for(lambda: pongs(fake), timeout=3)
        assert fake.messages[0]["channel_id"] == guild.text_channel.id and fake.messages[0]["nonce"]
        fake.wait_for(
            lambda: any(m.author.id == BOT.id for m in runner.bot.seen), timeout=3, message="the echo of the bot's message"
        )
        assert fake.unhandled == []


def test_it_gives_on_message_content_and_mentions():
    guild = make_guild()
    with FakeDiscord(guilds=[guild], bot_user=BOT) as fake, ready_bot(fake) as runner:
        fake.send_message(GUILD, guild.text_channel.id, ALICE.id, f"<@!{BOB.id}> ++ and <@&{guild.role('VIP').id}>")
        message = fake.wait_for(lambda: runner.bot.seen and runner.bot.seen[0], timeout=3)
        assert message.content.endswith("++ and " + f"<@&{guild.role('VIP').id}>")
        assert [m.id for m in message.mentions] == [BOB.id] and [r.name for r in message.role_mentions] == ["VIP"]
        assert message.author.id == ALICE.id and message.author.guild_permissions.administrator
        assert fake.unhandled == []


def test_it_blanks_content_without_the_message_content_intent_unless_mentioned():
    guild = make_guild()
    intents = discord.Intents.default()
    intents.members = True
    with FakeDiscord(guilds=[guild], bot_user=BOT) as fake, ready_bot(fake, intents=intents) as runner:
        fake.send_message(GUILD, guild.text_channel.id, ALICE.id, "!!ping")
        fake.send_message(GUILD, guild.text_channel.id, ALICE.id, f"<@{BOT.id}> hello")
        fake.wait_for(lambda: len(runner.bot.seen) == 2, timeout=3)
        assert [m.content for m in runner.bot.seen] == ["", f"<@{BOT.id}> hello"]
        assert fake.messages == [] and fake.unhandled == []


def test_it_records_role_changes_with_their_reason_and_updates_the_member():
    guild = make_guild()
    vip = guild.role("VIP")
    with FakeDiscord(guilds=[guild], bot_user=BOT) as fake, ready_bot(fake) as runner:
        member = runner.bot.get_guild(GUILD).get_member(BOB.id)
        runner.run(member.add_roles(discord.Object(vip.id), reason="timer: 1h by alice"))
        assert fake.role_changes == [
            {"method": "PUT", "guild_id": GUILD, "user_id": BOB.id, "role_id": vip.id, "reason": "timer: 1h by alice"}
        ]
        assert fake.member_roles(GUILD, BOB.id) == {vip.id}
        fake.wait_for(lambda: vip.id in [r.id for r in member.roles], timeout=3, message="GUILD_MEMBER_UPDATE in the cache")
        runner.run(member.remove_roles(discord.Object(vip.id), reason="expired"))
        assert fake.role_changes[-1]["method"] == "DELETE" and fake.member_roles(GUILD, BOB.id) == set()
        assert fake.unhandled == []


def test_it_refuses_role_changes_like_discord():
    guild = make_guild()
    http_error = discord.HTTPException
    with FakeDiscord(guilds=[guild], bot_user=BOT) as fake, ready_bot(fake) as runner:
        http = runner.bot.http

        def refusal(user_id: int, role_id: int) -> tuple[int, int]:
            with pytest.raises(http_error) as caught:
                runner.run(http.add_role(GUILD, user_id, role_id, reason="test"))
            return caught.value.status, caught.value.code

        assert refusal(123, guild.role("VIP").id) == (404, 10007)  # Unknown Member
        assert refusal(BOB.id, 456) == (404, 10011)  # Unknown Role
        assert refusal(BOB.id, guild.role("Moderator").id) == (403, 50013)  # above the bot's role
        fake.fail_next("PUT", r"/guilds/\d+/members/\d+/roles/\d+", 403, {"code": 50013, "message": "Missing Permissions"})
        assert refusal(BOB.id, guild.role("VIP").id) == (403, 50013)
        assert fake.role_changes == [] and fake.unhandled == []


def test_it_retries_a_rate_limited_message_and_delivers_it_once():
    guild = make_guild()
    with FakeDiscord(guilds=[guild], bot_user=BOT) as fake, ready_bot(fake) as runner:
        fake.rate_limit_next("POST", r"/channels/\d+/messages", retry_after=0.3)
        started = time.monotonic()
        fake.send_message(GUILD, guild.text_channel.id, ALICE.id, "!!ping")
        fake.wait_for(lambda: pongs(fake), timeout=3)
        assert time.monotonic() - started >= 0.3
        time.sleep(0.1)
        statuses = [r["status"] for r in fake.requests if r["method"] == "POST"]
        assert statuses == [429, 200] and len(fake.messages) == 1
        assert runner.bot.is_ready() and fake.unhandled == []


def test_it_resumes_after_a_reconnect_request_and_replays_missed_events():
    guild = make_guild()
    with FakeDiscord(guilds=[guild], bot_user=BOT) as fake, ready_bot(fake) as runner:
        assert fake.request_reconnect() == 1
        fake.send_message(GUILD, guild.text_channel.id, ALICE.id, "!!ping")  # sent while the client reconnects
        fake.wait_for(lambda: fake.resume_count == 1, timeout=3)
        fake.wait_for(lambda: pongs(fake), timeout=3)
        fake.send_message(GUILD, guild.text_channel.id, BOB.id, "!!ping")
        fake.wait_for(lambda: len(pongs(fake)) == 2, timeout=3)
        time.sleep(0.1)
        assert len(pongs(fake)) == 2 and fake.identify_count == 1 and runner.bot.is_ready()
        assert fake.unhandled == []


def test_it_syncs_slash_commands_and_invokes_a_group_subcommand():
    guild = make_guild()
    vip = guild.role("VIP")
    with FakeDiscord(guilds=[guild], bot_user=BOT) as fake, ready_bot(fake):
        registered = {c["name"]: c for c in fake.registered_commands[None]}
        assert sorted(registered) == ["echo", "later", "timer"] and registered["timer"]["application_id"] == str(fake.app_id)
        set_options = next(o for o in registered["timer"]["options"] if o["name"] == "set")["options"]
        assert [(o["name"], o["type"]) for o in set_options] == [("user", 6), ("role", 8), ("time", 3)]

        it = fake.send_slash(
            GUILD, guild.text_channel.id, ALICE.id, "timer", [("set", {"user": BOB.id, "role": vip, "time": "1h"})]
        )
        fake.wait_for(lambda: fake.interaction_responses, timeout=3)
        response = fake.interaction_responses[0]
        assert response["interaction_id"] == int(it["id"]) and response["type"] == 4
        assert response["data"]["content"] == "bob gets VIP for 1h"

        it = fake.send_slash(GUILD, guild.text_channel.id, ALICE.id, "timer", [("roles", [("add", {"role": vip.id})])])
        fake.wait_for(lambda: fake.followups, timeout=3)
        assert fake.interaction_responses[-1]["type"] == 5
        assert fake.followups[0]["content"] == "allowed VIP" and fake.followups[0]["interaction_id"] == int(it["id"])

        fake.send_slash(GUILD, guild.text_channel.id, BOB.id, "echo", {"text": "hi", "times": 2})
        fake.wait_for(lambda: len(fake.interaction_responses) == 3, timeout=3)
        assert fake.interaction_responses[-1]["data"]["content"] == "hi hi"
        with pytest.raises(ValueError, match="unknown options"):
            fake.send_slash(GUILD, guild.text_channel.id, BOB.id, "echo", {"text": "hi", "nope": 1})
        assert fake.unhandled == []


def test_it_handles_dms_both_ways_and_edits_of_a_deferred_reply():
    guild = make_guild()
    channel_id = guild.text_channel.id
    with FakeDiscord(guilds=[guild], bot_user=BOT) as fake, ready_bot(fake) as runner:
        fake.send_message(GUILD, channel_id, BOB.id, "!!whisper")
        fake.wait_for(lambda: fake.dms, timeout=3)
        assert (fake.dms[0]["recipient_id"], fake.dms[0]["content"], fake.messages) == (BOB.id, "psst", [])
        fake.send_dm(BOB.id, "hello bot")
        fake.wait_for(lambda: any(m.guild is None and m.content == "hello bot" for m in runner.bot.seen), timeout=3)
        fake.send_slash(GUILD, channel_id, BOB.id, "later")
        edit = fake.wait_for(lambda: [f for f in fake.followups if f["method"] == "PATCH"], timeout=3)[0]
        assert (edit["message_id"], edit["content"], fake.interaction_responses[-1]["type"]) == ("@original", "done", 5)
        assert fake.unhandled == []


def test_it_rejects_a_wrong_token_with_login_failure():
    with FakeDiscord(guilds=[make_guild()], bot_user=BOT) as fake:
        with BotThread(fake, make_bot, token="not-the-token") as runner:
            assert isinstance(runner.wait_done(5), discord.LoginFailure)
        assert fake.identify_count == 0 and fake.unhandled == []


def test_it_closes_with_4014_when_a_privileged_intent_is_not_enabled():
    with FakeDiscord(guilds=[make_guild()], bot_user=BOT, privileged_intents={"members"}) as fake:
        with BotThread(fake, make_bot) as runner:
            assert isinstance(runner.wait_done(5), discord.PrivilegedIntentsRequired)
        assert fake.unhandled == []


def test_it_holds_events_sent_before_identify_until_the_bot_is_ready():
    guild = make_guild()
    with FakeDiscord(guilds=[guild], bot_user=BOT) as fake:
        fake.send_message(GUILD, guild.text_channel.id, ALICE.id, "!!ping")
        with ready_bot(fake):
            fake.wait_for(lambda: pongs(fake), timeout=3)
        assert fake.unhandled == []


class QuickShardedBot(commands.AutoShardedBot):
    async def before_identify_hook(self, shard_id, *, initial=False):
        pass  # discord.py waits 5 s between shards' IDENTIFYs; the fake has no such limit


def test_it_splits_guilds_over_shards_from_gateway_bot():
    ids = [(2 << 22) | 1, (3 << 22) | 1]  # shard 0 and shard 1 of 2
    assert [shard_of(i, 2) for i in ids] == [0, 1]
    guilds = [make_guild(i) for i in ids]
    with (
        FakeDiscord(guilds=guilds, bot_user=BOT, recommended_shards=2) as fake,
        ready_bot(fake, bot_class=QuickShardedBot) as runner,
    ):
        assert fake.wait_for_ready_sent(3, count=2) and fake.identify_count == 2
        assert {g.id: g.shard_id for g in runner.bot.guilds} == {ids[0]: 0, ids[1]: 1}
        fake.send_message(ids[1], guilds[1].text_channel.id, ALICE.id, "!!ping")
        fake.wait_for(lambda: pongs(fake), timeout=3)
        assert any(r["path"] == "/gateway/bot" for r in fake.requests) and fake.unhandled == []


def test_it_chunks_a_large_guild_and_builds_50k_members():
    # How fast the fake builds them is the memory bench's business (bench/runbot_memory.py), not a test's.
    huge = FakeGuild.with_many_members(guild_id=GUILD, bot_user=BOT, count=50_000)
    assert len(huge.members) == 50_001
    large = FakeGuild.with_many_members(guild_id=GUILD, bot_user=BOT, count=2_500)
    with FakeDiscord(guilds=[large], bot_user=BOT) as fake, ready_bot(fake) as runner:
        seen = runner.bot.get_guild(GUILD)
        assert seen.large and seen.chunked and len(seen.members) == 2_501
        assert fake.unhandled == []


def test_it_dedupes_nonces_and_records_unknown_routes():
    guild = make_guild()
    with FakeDiscord(guilds=[guild], bot_user=BOT) as fake, ready_bot(fake) as runner:
        channel = runner.bot.get_channel(guild.text_channel.id)
        first = runner.run(channel.send("once", nonce=42))
        again = runner.run(channel.send("once", nonce=42))
        assert first.id == again.id and [m["content"] for m in fake.messages] == ["once"]
        with pytest.raises(discord.NotFound):
            runner.run(runner.bot.http.request(discord.http.Route("GET", "/nothing/here")))
        assert fake.unhandled == [{"method": "GET", "path": "/nothing/here", "query": {}, "body": None}]


def test_it_answers_json_with_the_exact_content_type_and_401_on_a_wrong_token():
    with FakeDiscord(guilds=[make_guild()], bot_user=BOT) as fake:
        request = urllib.request.Request(f"{fake.api_base}/users/@me", headers={"Authorization": f"Bot {fake.token}"})
        with urllib.request.urlopen(request, timeout=5) as response:
            assert response.headers["Content-Type"] == "application/json"
            assert response.headers["X-RateLimit-Bucket"] and json.load(response)["id"] == str(BOT.id)
        bad = urllib.request.Request(f"{fake.api_base}/users/@me", headers={"Authorization": "Bot nope"})
        with pytest.raises(urllib.error.HTTPError) as caught:
            urllib.request.urlopen(bad, timeout=5)
        caught.value.close()
        assert caught.value.code == 401
        assert fake.unhandled == []


def test_it_leaves_no_running_loop_behind():
    with FakeDiscord(guilds=[make_guild()], bot_user=BOT) as fake, ready_bot(fake) as runner:
        loop = runner.loop
    assert loop.is_closed()
    with pytest.raises(RuntimeError):
        asyncio.get_running_loop()


@pytest.mark.parametrize(("unlimited", "bucket_size"), [(False, 50), (True, 1_000_000)])
def test_it_advertises_buckets_that_discord_py_obeys_or_with_unlimited_never_fill(unlimited, bucket_size):
    """The default headers say 50 a second per bucket and channel, and discord.py holds a burst to that
    itself; the speed benches' ``unlimited=True`` advertises buckets that never fill."""
    guild = make_guild()
    with FakeDiscord(guilds=[guild], bot_user=BOT, unlimited=unlimited) as fake, ready_bot(fake) as runner:
        fake.send_message(GUILD, guild.text_channel.id, ALICE.id, "!!ping")
        fake.wait_for(lambda: pongs(fake), timeout=3)
        limits = {bucket.limit for bucket in runner.bot.http._buckets.values()}
        assert bucket_size in limits
        assert fake.unhandled == []
    with pytest.raises(ValueError, match="contradict"):
        FakeDiscord(guilds=[make_guild()], bot_user=BOT, unlimited=True, rate_limits=RateLimits())
