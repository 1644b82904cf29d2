"""`manage.py runbot` against the fake Discord: cookies from chat and /cookies."""

from __future__ import annotations

import pytest

from commands.models import CookieBalance, CookieLedger
from tests.bots.conftest import ADMIN, ALICE, BOB, GUILD_ID, OTHER_BOT, no_new_reply, wait_reply

pytestmark = pytest.mark.django_db(transaction=True)


def balance(member_id: int) -> int | None:
    return CookieBalance.objects.filter(guild_id=GUILD_ID, member_id=member_id).values_list("balance", flat=True).first()


def test_it_gives_a_cookie_and_replies_with_the_count(fake, bot):
    reply = wait_reply(fake, ALICE, f"<@{BOB.id}>++", lambda m: "cookie" in m["content"])
    assert reply["content"] == f"<@{BOB.id}> has 1 :cookie:'s"
    assert balance(BOB.id) == 1
    row = CookieLedger.objects.get(guild_id=GUILD_ID)
    assert (row.giver_id, row.receiver_id, row.delta) == (ALICE.id, BOB.id, 1)
    assert fake.unhandled == []


@pytest.mark.parametrize("form", ["<@{id}> ++", "<@!{id}>++"])
def test_it_reads_the_other_mention_forms(fake, bot, form):
    wait_reply(fake, ALICE, form.format(id=BOB.id), lambda m: "cookie" in m["content"])
    assert balance(BOB.id) == 1
    assert fake.unhandled == []


def test_it_credits_the_member_followed_by_plus_plus_not_the_first_mention(fake, bot):
    reply = wait_reply(fake, ALICE, f"<@{ADMIN.id}> hi <@{BOB.id}>++", lambda m: "cookie" in m["content"])
    assert reply["content"] == f"<@{BOB.id}> has 1 :cookie:'s"
    assert balance(BOB.id) == 1 and balance(ADMIN.id) is None
    assert fake.unhandled == []


def test_it_counts_every_mention_with_plus_plus(fake, bot):
    reply = wait_reply(fake, ALICE, f"<@{ADMIN.id}>++ and <@{BOB.id}>++", lambda m: "cookie" in m["content"])
    assert reply["content"].splitlines() == [f"<@{ADMIN.id}> has 1 :cookie:'s", f"<@{BOB.id}> has 1 :cookie:'s"]
    assert fake.unhandled == []


def test_it_refuses_a_self_give(fake, bot):
    reply = wait_reply(fake, ALICE, f"<@{ALICE.id}>++", lambda m: "yourself" in m["content"])
    assert reply["content"] == "You can't give yourself cookies."
    assert balance(ALICE.id) is None and not CookieLedger.objects.exists()
    assert fake.unhandled == []


def test_it_refuses_cookies_for_bots(fake, bot):
    wait_reply(fake, ALICE, f"<@{OTHER_BOT.id}>++", lambda m: m["content"] == "Bots don't eat cookies.")
    assert balance(OTHER_BOT.id) is None
    assert fake.unhandled == []


def test_it_takes_a_cookie_with_minus_minus(fake, bot):
    reply = wait_reply(fake, ALICE, f"<@{BOB.id}>--", lambda m: "cookie" in m["content"])
    assert reply["content"] == f"<@{BOB.id}> has -1 :cookie:'s"
    assert balance(BOB.id) == -1
    assert fake.unhandled == []


def test_it_refuses_a_second_change_within_the_pair_cooldown(fake, bot):
    wait_reply(fake, ALICE, f"<@{BOB.id}>++", lambda m: "cookie" in m["content"])
    refused = wait_reply(fake, ALICE, f"<@{BOB.id}>++", lambda m: "Slow down" in m["content"])
    assert "again in" in refused["content"]
    assert balance(BOB.id) == 1
    assert fake.unhandled == []


def test_it_shows_counts_and_the_leaderboard(fake, bot):
    wait_reply(fake, ALICE, f"<@{BOB.id}>++", lambda m: "cookie" in m["content"])
    mine = wait_reply(fake, ADMIN, f"!!cookies <@{BOB.id}>", lambda m: "rank" in m["content"])
    assert mine["content"] == f"<@{BOB.id}> has 1 :cookie:'s (rank #1; last 7 days #1 with 1; last 30 days #1 with 1)"
    top = wait_reply(fake, ADMIN, "!!cookies top", lambda m: bool(m.get("embeds")))
    assert f"<@{BOB.id}>" in top["embeds"][0]["description"]
    refused = wait_reply(fake, ALICE, f"!!cookies set <@{BOB.id}> 50", lambda m: "Manage Server" in m["content"])
    assert refused and balance(BOB.id) == 1
    wait_reply(fake, ADMIN, f"!!cookies set <@{BOB.id}> 50", lambda m: "50" in m["content"])
    assert balance(BOB.id) == 50
    assert fake.unhandled == []


@pytest.mark.parametrize("form", ["thanks <@{id}>\n-- Bob", "<@{id}>\n\n ++"])
def test_it_ignores_a_sign_on_another_line_than_the_mention(fake, bot, form):
    no_new_reply(fake, ALICE, form.format(id=BOB.id))
    assert balance(BOB.id) is None and not CookieLedger.objects.exists()
    # The same-line form right after still counts: the bot was listening all along.
    wait_reply(fake, ALICE, f"<@{BOB.id}> ++", lambda m: "cookie" in m["content"])
    assert balance(BOB.id) == 1
    assert fake.unhandled == []


@pytest.mark.parametrize("typed", ["١٢", "𝟏𝟐", "１２", "²"])
def test_it_reads_a_page_number_in_ascii_digits_only(fake, bot, typed):
    CookieBalance.objects.create(guild_id=GUILD_ID, member_id=BOB.id, balance=3)
    reply = wait_reply(fake, ALICE, f"!!cookies top {typed}", lambda m: "whole number" in m["content"])
    assert "Use the digits 0-9." in reply["content"]
    assert fake.unhandled == []


def test_it_still_reads_an_ascii_page_number_and_keeps_the_slash_option_an_integer(fake, bot):
    CookieBalance.objects.create(guild_id=GUILD_ID, member_id=BOB.id, balance=3)
    reply = wait_reply(fake, ALICE, "!!cookies top 1", lambda m: bool(m.get("embeds")))
    assert reply["embeds"][0]["title"] == "Cookie leaderboard — page 1"
    schema, _ = fake.state.command_schema(GUILD_ID, "cookies")
    top = next(o for o in schema["options"] if o["name"] == "top")
    page = next(o for o in top["options"] if o["name"] == "page")
    assert page["type"] == 4  # INTEGER: Discord checks the slash form itself
