"""The activity log's poster (bots.log_poster, run by the timer engine) against the fake Discord:
what it posts and how (names, no pings, nonces), a burst of 500 expiries in a few messages under the
channel's 5-per-5-s limit, two posters at once, and channels it can't post in."""

from __future__ import annotations

import asyncio
import re
from datetime import timedelta

import pytest
from django.utils import timezone

from bots.log_format import MESSAGE_CHARS, log_lines, log_pack
from bots.log_poster import LogPoster
from bots.rest import DiscordRest
from bots.sweeper import Sweeper
from guilds.models import LogEntry, LogSettings, Member, PostOutcome, Role
from guilds.services.log import log_channel_set
from tests.bots.conftest import ADMIN, ALICE, BOT, GUILD_ID
from tests.bots.sweeper_fixtures import engine_connections_closed
from tests.fake_discord import FakeDiscord, FakeGuild, pointed_at
from tests.fake_discord.ratelimits import CHANNEL_MESSAGES, BucketLimit, RateLimits
from timers.services import timer_set

pytestmark = pytest.mark.django_db(transaction=True)  # the poster reaches the database from sync_to_async threads
FIRST_MEMBER = 900_000_000_000_000_000


@pytest.fixture
def limited(settings):
    """A guild of 500 VIP holders behind a fake enforcing Discord's limits, the channel's 5 per 5 s included."""
    guild = FakeGuild.with_many_members(guild_id=GUILD_ID, bot_user=BOT, count=500, first_user_id=FIRST_MEMBER)
    for user in (ADMIN, ALICE):
        guild.members[user.id] = []
        guild.users[user.id] = user
    vip = guild.role("VIP").id
    for member_id in range(FIRST_MEMBER, FIRST_MEMBER + 500):
        guild.members[member_id] = [vip]
    limits = RateLimits(
        global_limit=10_000,  # the role removals of the burst are not what this measures
        buckets={"member-roles": BucketLimit(10_000, 1.0)},
        channel_messages=CHANNEL_MESSAGES,
    )
    with FakeDiscord(guilds=[guild], bot_user=BOT, rate_limits=limits) as fake:
        settings.DISCORD_API_BASE = fake.api_base
        settings.DISCORD_TOKEN = fake.token
        with pointed_at(fake):
            yield fake


@pytest.fixture
def plain(fake, settings):
    settings.DISCORD_API_BASE = fake.api_base
    settings.DISCORD_TOKEN = fake.token
    with pointed_at(fake):
        yield fake


def post_all(posters: int = 1) -> list[int]:
    """Run ``posters`` posters at once, each with its own REST client, until nothing is pending."""

    async def one() -> int:
        async with DiscordRest() as rest:
            poster = LogPoster(rest)
            total = 0
            while handled := await poster.pass_once():
                total += handled
            return total

    async def go() -> list[int]:
        return list(await asyncio.gather(*(one() for _ in range(posters))))

    return asyncio.run(go())


def log_messages(fake: FakeDiscord, channel_id: int) -> list[dict]:
    return [m for m in fake.messages if m["channel_id"] == channel_id and m["embeds"]]


def lines_of(messages: list[dict]) -> list[str]:
    return [line for m in messages for e in m["embeds"] for line in e["description"].split("\n")]


def members_named(messages: list[dict]) -> list[int]:
    """The burst's members mentioned in the posts, as often as they are mentioned."""
    found = [int(m) for line in lines_of(messages) for m in re.findall(r"<@(\d+)>", line)]
    return [m for m in found if FIRST_MEMBER <= m < FIRST_MEMBER + 500]


def test_it_posts_a_timer_set_with_names_and_who_asked_without_pinging(plain):
    channel = plain.guilds[GUILD_ID].text_channel
    vip = plain.guilds[GUILD_ID].role("VIP")
    Member.objects.create(guild_id=GUILD_ID, user_id=ALICE.id, username="alice", global_name="Alice")
    Member.objects.create(guild_id=GUILD_ID, user_id=ADMIN.id, username="admin", nick="The Boss")
    Role.objects.create(guild_id=GUILD_ID, role_id=vip.id, name="VIP")
    log_channel_set(guild_id=GUILD_ID, channel_id=channel.id, actor_id=ADMIN.id)
    timer_set(guild_id=GUILD_ID, member_id=ALICE.id, role_id=vip.id, duration=timedelta(days=30), actor_id=ADMIN.id)
    timer_set(guild_id=GUILD_ID, member_id=BOT.id + 99, role_id=vip.id, duration=timedelta(hours=1), actor_id=None)
    assert post_all() == [3]
    (message,) = log_messages(plain, channel.id)
    lines = lines_of([message])
    assert lines[1].endswith("Alice (@alice)'s @VIP timer set to 30d by The Boss (@admin)")
    assert re.match(r"<t:\d+:t> ", lines[1])
    assert lines[2].endswith(f"<@{BOT.id + 99}>'s @VIP timer set to 1h")  # unknown to the directory: a mention
    assert message["allowed_mentions"] == {"parse": []} or message["allowed_mentions"]["parse"] == []
    assert message["nonce"] and message["enforce_nonce"] is True
    assert set(LogEntry.objects.values_list("post_outcome", flat=True)) == {PostOutcome.POSTED}
    assert post_all() == [0]  # nothing twice
    assert len(log_messages(plain, channel.id)) == 1
    assert plain.unhandled == []


def test_a_burst_of_500_expiries_is_a_few_messages_and_no_429(limited):
    channel = limited.guilds[GUILD_ID].text_channel
    vip = limited.guilds[GUILD_ID].role("VIP")
    log_channel_set(guild_id=GUILD_ID, channel_id=channel.id, actor_id=ADMIN.id)
    then = timezone.now() - timedelta(minutes=5)
    for member_id in range(FIRST_MEMBER, FIRST_MEMBER + 500):
        timer_set(guild_id=GUILD_ID, member_id=member_id, role_id=vip.id, duration=timedelta(minutes=1), actor_id=None, now=then)
    LogEntry.objects.filter(kind="timer.set").update(posted_at=timezone.now(), post_outcome=PostOutcome.POSTED)

    async def expire_all() -> None:
        async with DiscordRest() as rest:
            sweeper = Sweeper(rest)
            while await sweeper.pass_once():
                pass

    asyncio.run(expire_all())
    assert LogEntry.objects.filter(kind="timer.expire").count() == 500
    assert post_all() == [501]
    messages = log_messages(limited, channel.id)
    lines = lines_of(messages)
    print(f"500 expiries: {len(messages)} messages, {[len(m['embeds']) for m in messages]} embeds")
    assert len(messages) <= 3
    assert sorted(members_named(messages)) == list(range(FIRST_MEMBER, FIRST_MEMBER + 500))
    assert all("timer ran out; the role was removed" in line for line in lines[1:])
    assert lines[1].split(" ", 1)[1].startswith(f"**500 ×** <@&{vip.id}> timer ran out")
    assert "(continued): " in lines[2]
    assert limited.rate_limited == []  # the channel's 5 per 5 s kept, and the rest
    assert not LogEntry.objects.filter(posted_at__isnull=True).exists()


def test_two_posters_at_once_post_each_entry_once(limited):
    channel = limited.guilds[GUILD_ID].text_channel
    vip = limited.guilds[GUILD_ID].role("VIP")
    log_channel_set(guild_id=GUILD_ID, channel_id=channel.id, actor_id=ADMIN.id)
    for member_id in range(FIRST_MEMBER, FIRST_MEMBER + 300):
        timer_set(guild_id=GUILD_ID, member_id=member_id, role_id=vip.id, duration=timedelta(days=1), actor_id=ADMIN.id)
    handled = post_all(posters=2)
    assert sum(handled) == 301
    named = members_named(log_messages(limited, channel.id))
    assert sorted(named) == list(range(FIRST_MEMBER, FIRST_MEMBER + 300))  # every one, none twice
    assert limited.rate_limited == []


def test_a_channel_it_may_not_post_in_keeps_the_entries_and_is_not_tried_again(plain):
    channel = plain.guilds[GUILD_ID].text_channel
    vip = plain.guilds[GUILD_ID].role("VIP")
    log_channel_set(guild_id=GUILD_ID, channel_id=channel.id, actor_id=ADMIN.id)
    plain.fail_next("POST", rf"/channels/{channel.id}/messages", 403, {"code": 50013, "message": "Missing Permissions"})
    timer_set(guild_id=GUILD_ID, member_id=ALICE.id, role_id=vip.id, duration=timedelta(days=1), actor_id=ADMIN.id)
    post_all()
    assert set(LogEntry.objects.values_list("post_outcome", flat=True)) == {PostOutcome.FORBIDDEN}
    assert LogSettings.objects.get(guild_id=GUILD_ID).post_error == "forbidden"
    tries = sum(1 for r in plain.requests if r["method"] == "POST" and r["path"].endswith(f"/channels/{channel.id}/messages"))
    timer_set(guild_id=GUILD_ID, member_id=ADMIN.id, role_id=vip.id, duration=timedelta(days=1), actor_id=ADMIN.id)
    post_all()
    again = sum(1 for r in plain.requests if r["method"] == "POST" and r["path"].endswith(f"/channels/{channel.id}/messages"))
    assert again == tries  # kept at once, no request: a broken channel is not hammered
    assert LogEntry.objects.filter(post_outcome=PostOutcome.FORBIDDEN).count() == 3  # the setting and two timers
    # Setting the channel again (permissions fixed) posts from then on.
    log_channel_set(guild_id=GUILD_ID, channel_id=channel.id, actor_id=ADMIN.id)
    post_all()
    assert lines_of(log_messages(plain, channel.id))[-1].endswith(f"Log channel set to <#{channel.id}> by <@{ADMIN.id}>")


def test_a_deleted_channel_keeps_the_entries(plain):
    log_channel_set(guild_id=GUILD_ID, channel_id=123_456_789_012_345_678, actor_id=ADMIN.id)
    post_all()
    assert LogEntry.objects.get().post_outcome == PostOutcome.GONE
    assert LogSettings.objects.get(guild_id=GUILD_ID).post_error == "gone"


def test_a_guild_without_a_log_channel_gets_no_post(plain):
    vip = plain.guilds[GUILD_ID].role("VIP")
    timer_set(guild_id=GUILD_ID, member_id=ALICE.id, role_id=vip.id, duration=timedelta(days=1), actor_id=ADMIN.id)
    assert post_all() == [0]
    assert plain.messages == [] and LogEntry.objects.get().post_outcome == PostOutcome.NO_CHANNEL


def test_packing_fills_messages_to_discords_limits():
    lines = [([i], f"<t:1700000000:t> line {i} " + "x" * 80) for i in range(500)]
    messages = log_pack(lines)
    assert [pk for m in messages for pk in m.entry_ids] == list(range(500))
    assert all(len(m.descriptions) <= 10 and m.chars <= MESSAGE_CHARS for m in messages)
    assert all(len(d) <= 4000 for m in messages for d in m.descriptions)
    assert len(messages) == -(-sum(len(line) + 1 for _, line in lines) // MESSAGE_CHARS)  # as few as the limits allow
    joined = [line for m in messages for d in m.descriptions for line in d.split("\n")]
    assert joined == [line for _, line in lines]


def test_alike_entries_are_folded_into_one_line_and_the_rest_kept_in_order():
    def entry(pk, text, member=None, kind="timer.expire", failed=False):
        return LogEntry(pk=pk, guild_id=GUILD_ID, kind=kind, text=text, member_id=member, failed=failed, created_at=None)

    entries = [entry(1, "Log channel set to <#5>")]
    entries += [entry(10 + i, f"<@{i}>'s <@&7> timer ran out; the role was removed", member=i) for i in range(1, 5)]
    entries += [entry(20, "<@9>'s <@&7> timer ran out, but I may not remove the role", member=9, failed=True)]
    lines = log_lines(entries, lambda text: text.replace("<@1>", "Alice (@alice)"))
    assert lines == [
        ([1], "Log channel set to <#5>"),
        ([11, 12, 13, 14], "**4 ×** <@&7> timer ran out; the role was removed: Alice (@alice), <@2>, <@3>, <@4>"),
        ([20], "⚠️ <@9>'s <@&7> timer ran out, but I may not remove the role"),
    ]


def test_the_timer_engine_runs_the_poster_beside_its_loop(plain):
    channel = plain.guilds[GUILD_ID].text_channel
    log_channel_set(guild_id=GUILD_ID, channel_id=channel.id, actor_id=ADMIN.id)

    async def run() -> None:
        async with DiscordRest() as rest:
            await Sweeper(rest).run(1.5)

    asyncio.run(run())
    assert len(log_messages(plain, channel.id)) == 1
    assert LogEntry.objects.get().post_outcome == PostOutcome.POSTED


__all__ = ["engine_connections_closed"]
