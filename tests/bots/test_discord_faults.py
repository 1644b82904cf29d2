"""Discord-side fault drills: REST answering 500s, 429s or nothing for a while, and a gateway
that drops the connection.

The fake's fault switches (``FakeDiscord.fault``) make every matching request in a time
window fail (a faulted request does not happen); ``drop_gateway`` closes the bot's socket
the way a failing Discord edge does. Through each, the product backs off, does not crash
and loses nothing: a timer expiry due during the fault is done once afterwards, and a
member's message sent while the gateway was down is answered after the resume, once.
"""

from __future__ import annotations

import time

import pytest

from tests.bots.conftest import ADMIN, ALICE, BOB, GUILD_ID, wait_reply
from tests.bots.sweeper_fixtures import (
    ROLE_PATH,
    clock,
    discord_fake,
    engine_connections_closed,
    expire_events,
    role_path,
    stored,
    sweep_at,
)
from tests.bots.test_sweeper import holding, minutes, seconds, set_timer
from timers.models import ExpiryOutcome, TimerState

__all__ = ["clock", "discord_fake", "engine_connections_closed"]  # fixtures


def removals(fake, path: str) -> list[int]:
    return [r["status"] for r in fake.requests if r["method"] == "DELETE" and r["path"] == path]


# --- REST: the timer engine --------------------------------------------------------------------
@pytest.mark.django_db(transaction=True)
@pytest.mark.parametrize(
    "kind, seconds_down",
    [
        ("500", 2.0),  # discord.py retries 5xx after 1 s and 3 s: the pass itself gets through
        ("429", 1.5),  # it waits out each retry_after (0.5 s): the pass gets through too
        # No answer, the socket dropped: the claim is released, the next pass does it. The outage
        # outlasts the pass's two requests (0.3 s each) even on a loaded machine.
        ("timeout", 3.0),
    ],
)
def test_it_expires_a_timer_due_during_an_outage_once_afterwards(discord_fake, guild, clock, kind, seconds_down):
    fake = discord_fake
    vip, channel = guild.role("VIP"), guild.channel("bot-log")
    members = [ALICE, BOB]
    for member in members:
        holding(fake, member, vip)
    timers = [set_timer(member, vip, minutes(1), channel=channel) for member in members]

    fake.fault(kind, seconds_down, path_regex=ROLE_PATH, hang=0.3)
    started = time.monotonic()
    sweep_at(clock, minutes(1) + seconds(1))  # due during the fault
    during = {t.pk: stored(t).state for t in timers}
    while time.monotonic() - started < seconds_down:
        time.sleep(0.05)
    sweep_at(clock, minutes(1) + seconds(2))  # the fault is over
    sweep_at(clock, minutes(1) + seconds(3))  # and a pass more: nothing is done twice

    assert fake.faulted and {f["kind"] for f in fake.faulted} == {kind}
    for member, timer in zip(members, timers, strict=True):
        row = stored(timer)
        assert (row.state, row.outcome) == (TimerState.EXPIRED, ExpiryOutcome.REMOVED)
        assert expire_events(timer) == 1
        assert vip.id not in fake.member_roles(GUILD_ID, member.id)
        statuses = removals(fake, role_path(GUILD_ID, member.id, vip.id))
        assert statuses.count(204) == 1, statuses
    if kind == "timeout":
        assert set(during.values()) == {TimerState.ACTIVE}  # released, not recorded as failed
    lines = [line for m in fake.messages for line in m["content"].splitlines()]
    assert sorted(lines) == sorted(f"<@{m.id}>'s <@&{vip.id}> time is up; the role was removed." for m in members)
    assert fake.unhandled == []


# --- the bot process (manage.py runbot) --------------------------------------------------------
@pytest.mark.django_db(transaction=True)
def test_it_answers_a_message_once_when_discord_answers_500s_for_a_while(bot, fake, guild):
    fake.fault("500", 2.0, method="POST", path_regex=rf"/channels/{guild.text_channel.id}/messages")
    seen = len(fake.messages)
    reply = wait_reply(fake, ALICE, "!!ping", lambda m: m["content"].startswith("Pong"), timeout=20, process=bot)
    assert fake.faulted, "the fault never hit the bot's reply"
    time.sleep(0.5)
    assert [m["content"] for m in fake.messages[seen:]] == [reply["content"]]
    assert bot.proc.poll() is None
    wait_reply(fake, ADMIN, "!!ping", lambda m: m["content"].startswith("Pong"), process=bot)  # still answering


@pytest.mark.django_db(transaction=True)
def test_it_resumes_after_the_gateway_drops_and_answers_what_was_sent_meanwhile(bot, fake, guild):
    (session,) = [s for s in fake.gateway.sessions.values() if s.conn is not None]
    session_id, seen_seq = session.id, session.sent
    identified = fake.identify_count
    assert fake.drop_gateway() == 1
    # A member writes while the bot has no socket: the event waits in the session's history.
    seen = len(fake.messages)
    fake.send_message(GUILD_ID, guild.text_channel.id, ALICE.id, "!!ping")

    fake.wait_for(lambda: fake.resumes, timeout=20, message="the bot never resumed")
    reply = fake.wait_for(
        lambda: next((m for m in fake.messages[seen:] if m["content"].startswith("Pong")), None),
        timeout=10,
        message="no answer after the resume",
    )
    time.sleep(0.5)

    assert fake.resumes == [{"session_id": session_id, "seq": seen_seq}]
    assert fake.identify_count == identified  # resumed, not identified afresh
    assert [m["content"] for m in fake.messages[seen:]] == [reply["content"]]  # answered once
    assert bot.proc.poll() is None
    wait_reply(fake, ADMIN, "!!ping", lambda m: m["content"].startswith("Pong"), process=bot)
