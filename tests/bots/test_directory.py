"""`manage.py runbot` keeps the directory: names from the gateway, written in batches.

Two guilds; the bot process writes what it sees every 0.3 s here (5 s by default). The
flush log line ("directory: wrote N rows …") counts what was written, so a burst of
messages from the same members must write each member once, not once per message.
"""

from __future__ import annotations

import re
import time

import pytest

from guilds.models import Channel, Guild, Member, Role
from tests.bots.conftest import ADMIN, ALICE, BOB, BOT, GUILD_ID, BotProcess, bot_env, wait_reply
from tests.fake_discord import FakeDiscord, FakeGuild, FakeUser

pytestmark = pytest.mark.django_db(transaction=True)
OTHER_ID = 812_345_678_901_299_999
CAROL = FakeUser(id=812_345_678_900_000_010, name="carol", global_name="Carol")
DAVE = FakeUser(id=812_345_678_900_000_011, name="dave")


@pytest.fixture
def fake(guild):
    guild.name = "My Server"
    other = FakeGuild.typical(guild_id=OTHER_ID, bot_user=BOT, members=[BOB, CAROL], name="Other Place")
    with FakeDiscord(guilds=[guild, other], bot_user=BOT) as running:
        yield running


@pytest.fixture
def bot(fake, transactional_db, tmp_path):
    process = BotProcess(bot_env(fake, DIRECTORY_FLUSH_SECONDS="0.3"), tmp_path / "runbot.log")
    try:
        assert fake.wait_for_ready_sent(30), process.log()
        wait_reply(fake, ADMIN, "!!ping", lambda m: m["content"].startswith("Pong"), process=process)
        yield process
    finally:
        process.stop()


def rows_written(process: BotProcess) -> int:
    found = re.findall(r"directory: wrote \d+ rows \(flush \d+, (\d+) rows in all\)", process.log())
    return int(found[-1]) if found else 0


def settled(fake: FakeDiscord, process: BotProcess, predicate, message: str):
    """Wait for ``predicate`` (a database read) to hold, with the bot's log on failure."""
    try:
        return fake.wait_for(predicate, timeout=10, interval=0.1, message=message)
    except AssertionError:
        print(process.log())
        raise


def member(guild_id: int, user_id: int) -> Member | None:
    return Member.objects.filter(guild_id=guild_id, user_id=user_id).first()


def test_it_names_both_guilds_their_roles_and_channels_from_guild_create(fake, bot):
    settled(fake, bot, lambda: Guild.objects.count() == 2, "both guilds")
    assert dict(Guild.objects.values_list("guild_id", "name")) == {GUILD_ID: "My Server", OTHER_ID: "Other Place"}
    names = set(Role.objects.filter(guild_id=OTHER_ID).values_list("name", flat=True))
    assert {"@everyone", "Member", "VIP", "Moderator", "Admin", "Guildhall"} <= names
    assert Channel.objects.get(guild_id=GUILD_ID, name="general").channel_id == fake.guilds[GUILD_ID].text_channel.id
    assert member(GUILD_ID, BOT.id).bot and fake.unhandled == []


def test_a_burst_of_messages_writes_each_member_once(fake, bot):
    settled(fake, bot, lambda: member(GUILD_ID, ADMIN.id), "the admin's ping")
    channel = fake.guilds[GUILD_ID].text_channel.id
    other_channel = fake.guilds[OTHER_ID].text_channel.id
    settled(fake, bot, lambda: rows_written(bot) > 0, "the first flush")
    before = rows_written(bot)
    for n in range(100):
        fake.send_message(GUILD_ID, channel, ALICE.id, f"hello {n}")
        fake.send_message(OTHER_ID, other_channel, CAROL.id, f"hi {n}")
        fake.send_message(OTHER_ID, other_channel, BOB.id, f"<@{CAROL.id}> yo {n}")
    settled(fake, bot, lambda: member(OTHER_ID, BOB.id) and member(GUILD_ID, ALICE.id), "the burst's members")
    settled(fake, bot, lambda: rows_written(bot) - before >= 3, "the burst's flush")
    assert member(OTHER_ID, CAROL.id).global_name == "Carol" and member(GUILD_ID, ALICE.id).username == "alice"
    wait_reply(fake, ADMIN, "!!ping", lambda m: m["content"].startswith("Pong"), process=bot)
    # 300 messages from three members: three rows (plus an hour's seen_at refresh at most), not 300.
    assert rows_written(bot) - before <= 6, bot.log()
    assert fake.unhandled == []


def test_it_follows_members_joining_renamed_leaving_and_rejoining(fake, bot):
    fake.member_join(GUILD_ID, DAVE, nick="Dee")
    settled(fake, bot, lambda: member(GUILD_ID, DAVE.id), "Dave's join")
    assert str(member(GUILD_ID, DAVE.id)) == "Dee (@dave)" and member(GUILD_ID, DAVE.id).joined_at is not None
    fake.member_update(GUILD_ID, DAVE.id, nick="Big D")
    settled(fake, bot, lambda: member(GUILD_ID, DAVE.id).nick == "Big D", "the nick change (raw GUILD_MEMBER_UPDATE)")
    fake.member_leave(GUILD_ID, DAVE.id)
    settled(fake, bot, lambda: member(GUILD_ID, DAVE.id).left_at is not None, "Dave's departure")
    assert member(GUILD_ID, DAVE.id).username == "dave"
    fake.member_join(GUILD_ID, DAVE)
    settled(fake, bot, lambda: member(GUILD_ID, DAVE.id).left_at is None, "Dave's rejoin")
    assert member(GUILD_ID, DAVE.id).nick == "" and member(OTHER_ID, DAVE.id) is None
    assert fake.unhandled == []


def test_it_follows_guild_role_and_channel_changes(fake, bot):
    settled(fake, bot, lambda: Guild.objects.count() == 2, "both guilds")
    fake.guild_update(OTHER_ID, name="Renamed Place")
    booster = fake.role_create(GUILD_ID, "Booster")
    lounge = fake.channel_create(GUILD_ID, "lounge")
    settled(fake, bot, lambda: Channel.objects.filter(channel_id=lounge.id).exists(), "the new channel")
    settled(fake, bot, lambda: Guild.objects.get(guild_id=OTHER_ID).name == "Renamed Place", "the guild rename")
    assert Role.objects.get(role_id=booster.id).name == "Booster"
    fake.role_update(GUILD_ID, booster.id, name="Server Booster")
    fake.channel_update(GUILD_ID, lounge.id, name="the-lounge")
    settled(fake, bot, lambda: Channel.objects.get(channel_id=lounge.id).name == "the-lounge", "the channel rename")
    assert Role.objects.get(role_id=booster.id).name == "Server Booster"
    fake.role_delete(GUILD_ID, booster.id)
    fake.channel_delete(GUILD_ID, lounge.id)
    settled(fake, bot, lambda: Channel.objects.get(channel_id=lounge.id).deleted_at is not None, "the channel deletion")
    assert Role.objects.get(role_id=booster.id).deleted_at is not None
    fake.guild_leave(OTHER_ID)
    settled(fake, bot, lambda: Guild.objects.get(guild_id=OTHER_ID).left_at is not None, "the bot's removal")
    assert fake.unhandled == []


def test_it_learns_members_from_interactions(fake, bot):
    fake.send_slash(OTHER_ID, fake.guilds[OTHER_ID].text_channel.id, CAROL.id, "ping")
    settled(fake, bot, lambda: member(OTHER_ID, CAROL.id), "Carol from her interaction")
    assert member(OTHER_ID, CAROL.id).global_name == "Carol"


def test_it_writes_what_is_pending_when_stopped(fake, tmp_path, transactional_db):
    process = BotProcess(bot_env(fake, DIRECTORY_FLUSH_SECONDS="3600"), tmp_path / "runbot.log")
    try:
        assert fake.wait_for_ready_sent(30)
        wait_reply(fake, ADMIN, "!!ping", lambda m: m["content"].startswith("Pong"), process=process)
        fake.send_message(OTHER_ID, fake.guilds[OTHER_ID].text_channel.id, CAROL.id, "bye")
        time.sleep(0.5)
        assert member(OTHER_ID, CAROL.id) is None  # not before the flush
    finally:
        assert process.stop() == 0, process.log()
    assert member(OTHER_ID, CAROL.id) is not None and Guild.objects.count() == 2
