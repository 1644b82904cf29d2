"""`manage.py runbot` against the fake Discord: custom commands and built-ins."""

from __future__ import annotations

import re

import pytest

from commands.models import CustomCommand, GuildSettings
from tests.bots.conftest import ADMIN, ALICE, GUILD_ID, no_new_reply, wait_reply

pytestmark = pytest.mark.django_db(transaction=True)


def test_it_adds_a_command_then_uses_it_with_arguments(fake, bot):
    added = wait_reply(fake, ADMIN, "!!addCommand greet Hello {user}, first {0}, all: {args}", lambda m: "greet" in m["content"])
    assert added["content"] == "Added `!!greet`."
    assert CustomCommand.objects.get(guild_id=GUILD_ID, name="greet").author_id == ADMIN.id
    reply = wait_reply(fake, ALICE, "!!greet one two", lambda m: m["content"].startswith("Hello"))
    assert reply["content"] == f"Hello <@{ALICE.id}>, first one, all: one two"
    assert fake.unhandled == []


def test_it_lists_helps_and_removes(fake, bot):
    wait_reply(fake, ADMIN, "!!addCommand rules Be kind.", lambda m: m["content"].startswith("Added"))
    listed = wait_reply(fake, ALICE, "!!listCommands", lambda m: "rules" in m["content"])
    assert "`!!rules`" in listed["content"]
    helped = wait_reply(fake, ALICE, "!!help rules", lambda m: "Be kind." in m["content"])
    assert "**rules**" in helped["content"]
    removed = wait_reply(fake, ADMIN, "!!removeCommand rules", lambda m: m["content"].startswith("Removed"))
    assert removed["content"] == "Removed `!!rules`."
    assert not CustomCommand.objects.filter(guild_id=GUILD_ID, name="rules").exists()
    no_new_reply(fake, ALICE, "!!rules")
    assert fake.unhandled == []


def test_it_refuses_a_member_who_may_not_manage_commands(fake, bot):
    refused = wait_reply(fake, ALICE, "!!addCommand sneaky hi", lambda m: "Manage Server" in m["content"])
    assert "command manager role" in refused["content"]
    assert not CustomCommand.objects.filter(guild_id=GUILD_ID).exists()
    assert fake.unhandled == []


def test_it_refuses_an_unsafe_template_and_saves_nothing(fake, bot):
    refused = wait_reply(fake, ADMIN, "!!addCommand evil {0.__class__}", lambda m: "placeholder" in m["content"])
    assert "not a placeholder I know" in refused["content"]
    assert not CustomCommand.objects.filter(guild_id=GUILD_ID).exists()
    assert fake.unhandled == []


def test_it_never_pings_everyone_from_a_custom_command(fake, bot):
    wait_reply(fake, ADMIN, "!!addCommand shout @everyone look at {0}", lambda m: m["content"].startswith("Added"))
    reply = wait_reply(fake, ALICE, "!!shout @here", lambda m: "look at" in m["content"])
    assert "@everyone" not in reply["content"] and "@here" not in reply["content"]
    parse = reply["allowed_mentions"]["parse"]
    assert "everyone" not in parse and "roles" not in parse
    assert fake.unhandled == []


def test_it_ignores_unknown_names_silently(fake, bot):
    no_new_reply(fake, ALICE, "!!nosuchcommand at all")
    assert fake.unhandled == []


def test_it_rolls_dice(fake, bot):
    reply = wait_reply(fake, ALICE, "!!dice 2d6", lambda m: m["content"].startswith("🎲"))
    total = int(reply["content"].split("**")[1])
    assert reply["content"].startswith("🎲 2d6: ") and 2 <= total <= 12
    assert fake.unhandled == []


def test_it_answers_a_bad_dice_expression_with_its_usage(fake, bot):
    reply = wait_reply(fake, ALICE, "!!dice lots", lambda m: "Roll dice like" in m["content"])
    assert "`2d6`" in reply["content"]
    assert fake.unhandled == []


def test_it_changes_the_prefix(fake, bot):
    wait_reply(fake, ADMIN, "!!settings prefix ?", lambda m: m["content"].startswith("Prefix is now"))
    reply = wait_reply(fake, ALICE, "?coinflip", lambda m: m["content"].startswith("🪙"))
    assert reply["content"] in ("🪙 Heads!", "🪙 Tails!")
    assert fake.unhandled == []


def test_it_answers_a_roll_of_a_unicode_digit_with_a_clear_line(fake, bot):
    reply = wait_reply(fake, ALICE, "!!roll ²", lambda m: "digits 0-9" in m["content"])
    assert reply["content"] == "Roll a number written with the digits 0-9, like `roll 20`."
    assert "went wrong" not in reply["content"] and fake.unhandled == []


def test_it_applies_a_cooldown_and_shows_it_in_the_details(fake, bot):
    wait_reply(fake, ADMIN, "!!addCommand wave waves", lambda m: m["content"].startswith("Added"))
    set_ = wait_reply(fake, ADMIN, "!!command cooldown wave 300 member", lambda m: "Cooldown" in m["content"])
    assert set_["content"] == "Cooldown of `wave`: 300s per member."
    wait_reply(fake, ALICE, "!!wave", lambda m: m["content"] == "waves")
    refused = wait_reply(fake, ALICE, "!!wave", lambda m: "cooling down" in m["content"])
    assert "try again in" in refused["content"]
    wait_reply(fake, ADMIN, "!!wave", lambda m: m["content"] == "waves")  # another member is free
    shown = wait_reply(fake, ALICE, "!!command show wave", lambda m: "**wave**" in m["content"])
    helped = wait_reply(fake, ALICE, "!!help wave", lambda m: "**wave**" in m["content"])
    # One rendering for both; the use count may move between the two if the bot's batched
    # usage flush lands in between, so it is left out of the comparison.
    uses = re.compile(r"used \d+ times")
    assert uses.sub("used N times", shown["content"]) == uses.sub("used N times", helped["content"])
    assert "cooldown: 300s per member" in shown["content"] and "waves" in shown["content"]
    assert fake.unhandled == []


def test_it_reads_numbers_in_settings_and_cooldowns_in_ascii_digits_only(fake, bot):
    refused = wait_reply(fake, ADMIN, "!!settings cookie-cooldown ١٢", lambda m: "whole number" in m["content"])
    assert "Use the digits 0-9." in refused["content"]
    wait_reply(fake, ADMIN, "!!addCommand wave waves", lambda m: m["content"].startswith("Added"))
    refused = wait_reply(fake, ADMIN, "!!command cooldown wave 𝟑𝟎𝟎 member", lambda m: "whole number" in m["content"])
    assert "Use the digits 0-9." in refused["content"]
    saved = wait_reply(fake, ADMIN, "!!settings cookie-cooldown 12", lambda m: m["content"].startswith("Cookie cooldown"))
    assert saved["content"] == "Cookie cooldown: 12s per pair."
    assert GuildSettings.objects.get(guild_id=GUILD_ID).cookie_pair_cooldown_seconds == 12
    assert fake.unhandled == []
