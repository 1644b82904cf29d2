"""Custom commands limited by role and channel: the check, the services that store the lists, and what the bots load."""

from __future__ import annotations

import io
import json

import pytest

from commands.errors import CustomCommandError, CustomCommandMissing, SettingsInvalid
from commands.models import CustomCommand, GuildSettings
from commands.restrictions import (
    MAX_RESTRICTION_IDS,
    RestrictionEdit,
    RestrictionInvalid,
    restriction_compile,
)
from commands.selectors import command_describe, commands_for_cache
from commands.services import command_alias_add, command_create, command_update, guild_settings_update
from ops.bundles import guild_export, guild_import
from tests.conftest import GUILD, OTHER_GUILD

VIP, MEMBER, MUTED = 111111111111111111, 222222222222222222, 333333333333333333
GENERAL, BOTS, THREAD = 444444444444444444, 555555555555555555, 666666666666666666


@pytest.fixture
def greet(db) -> CustomCommand:
    return command_create(guild_id=GUILD, name="greet", template="Hello {user}", author_id=None)


def restriction(allowed=(), denied=(), channels=()):
    compiled = restriction_compile(list(allowed), list(denied), list(channels))
    assert compiled is not None
    return compiled


# -- the check --------------------------------------------------------------------------
def test_it_compiles_no_restriction_to_none():
    assert restriction_compile([], [], []) is None


def test_it_allows_only_members_with_an_allowed_role():
    r = restriction(allowed=[VIP, MEMBER])
    assert r.refusal([MEMBER], GENERAL) is None
    assert r.refusal([MUTED], GENERAL) == f"is only for members with <@&{VIP}> or <@&{MEMBER}>"
    assert r.refusal([], GENERAL) is not None


def test_it_lets_a_denied_role_beat_an_allowed_one():
    r = restriction(allowed=[VIP], denied=[MUTED])
    assert r.refusal([VIP], GENERAL) is None
    assert r.refusal([VIP, MUTED], GENERAL) == f"isn't available to <@&{MUTED}>"


def test_it_allows_only_the_allowed_channels_and_their_threads():
    r = restriction(channels=[BOTS])
    assert r.refusal([], BOTS) is None
    assert r.refusal([], THREAD, BOTS) is None
    assert r.refusal([], GENERAL) == f"works only in <#{BOTS}>"


def test_it_leaves_out_what_is_not_an_id_in_a_stored_list():
    assert restriction_compile(["x", None, -1, True], [], []) is None
    assert restriction_compile("nonsense", {"a": 1}, [BOTS]).allowed_channels == frozenset({BOTS})


def test_it_names_a_few_roles_and_counts_the_rest():
    r = restriction(allowed=range(1, 8))
    assert r.refusal([99], GENERAL).endswith("(and 4 more)")


# -- the services -----------------------------------------------------------------------
def test_it_stores_lists_given_whole_sorted_and_without_repeats(greet):
    updated = command_update(guild_id=GUILD, name="greet", allowed_role_ids=[VIP, str(MEMBER), VIP], allowed_channel_ids=[BOTS])
    assert updated.allowed_role_ids == sorted([VIP, MEMBER])
    stored = CustomCommand.objects.get(pk=greet.pk)
    assert (stored.allowed_role_ids, stored.denied_role_ids, stored.allowed_channel_ids) == (sorted([VIP, MEMBER]), [], [BOTS])


def test_it_creates_a_command_with_its_restrictions(db):
    created = command_create(guild_id=GUILD, name="vip", template="hi", author_id=None, denied_role_ids=[MUTED])
    assert CustomCommand.objects.get(pk=created.pk).denied_role_ids == [MUTED]


def test_it_applies_chat_edits_to_what_is_stored(greet):
    command_update(guild_id=GUILD, name="greet", restriction_edit=RestrictionEdit.allow_role(VIP))
    command_update(guild_id=GUILD, name="greet", restriction_edit=RestrictionEdit.allow_role(MEMBER))
    command_update(guild_id=GUILD, name="greet", restriction_edit=RestrictionEdit.deny_role(VIP))
    command_update(guild_id=GUILD, name="greet", restriction_edit=RestrictionEdit.allow_channel(BOTS))
    stored = CustomCommand.objects.get(pk=greet.pk)
    # Denying an allowed role moves it: a role is allowed or denied, never both.
    assert (stored.allowed_role_ids, stored.denied_role_ids, stored.allowed_channel_ids) == ([MEMBER], [VIP], [BOTS])
    command_update(guild_id=GUILD, name="greet", restriction_edit=RestrictionEdit.lift_role(VIP))
    assert CustomCommand.objects.get(pk=greet.pk).denied_role_ids == []
    command_update(guild_id=GUILD, name="greet", restriction_edit=RestrictionEdit.lift_all())
    stored = CustomCommand.objects.get(pk=greet.pk)
    assert (stored.allowed_role_ids, stored.denied_role_ids, stored.allowed_channel_ids) == ([], [], [])


def test_it_restricts_through_an_alias(greet):
    command_alias_add(guild_id=GUILD, name="greet", alias="hi")
    command_update(guild_id=GUILD, name="hi", restriction_edit=RestrictionEdit.allow_channel(BOTS))
    assert CustomCommand.objects.get(pk=greet.pk).allowed_channel_ids == [BOTS]


@pytest.mark.parametrize(
    "changes, words",
    [
        ({"allowed_role_ids": [0]}, "not a Discord id"),
        ({"allowed_role_ids": ["12a"]}, "not a Discord id"),
        ({"denied_role_ids": [True]}, "not a Discord id"),
        ({"allowed_channel_ids": [2**63]}, "not a Discord id"),
        ({"allowed_role_ids": "123"}, "a list of ids"),
        ({"allowed_role_ids": [GUILD]}, "@everyone is every member"),
        ({"allowed_role_ids": list(range(1, MAX_RESTRICTION_IDS + 2))}, f"at most {MAX_RESTRICTION_IDS}"),
    ],
)
def test_it_refuses_a_bad_list_and_changes_nothing(greet, changes, words):
    with pytest.raises(RestrictionInvalid, match=words):
        command_update(guild_id=GUILD, name="greet", template="changed", **changes)
    stored = CustomCommand.objects.get(pk=greet.pk)
    assert stored.template == "Hello {user}" and stored.allowed_role_ids == [] and stored.allowed_channel_ids == []


def test_it_refuses_a_chat_edit_past_the_limit_and_keeps_the_lists(greet):
    many = list(range(1, MAX_RESTRICTION_IDS + 1))
    command_update(guild_id=GUILD, name="greet", allowed_role_ids=many)
    with pytest.raises(RestrictionInvalid):
        command_update(guild_id=GUILD, name="greet", restriction_edit=RestrictionEdit.allow_role(VIP))
    assert CustomCommand.objects.get(pk=greet.pk).allowed_role_ids == many


def test_it_says_built_ins_are_never_restricted(db):
    with pytest.raises(CustomCommandError, match="built-ins are never restricted"):
        command_update(guild_id=GUILD, name="help", restriction_edit=RestrictionEdit.allow_role(VIP))


def test_it_says_so_for_a_missing_command(db):
    with pytest.raises(CustomCommandMissing, match="no command called `nope`"):
        command_update(guild_id=GUILD, name="nope", restriction_edit=RestrictionEdit.allow_role(VIP))


def test_it_bumps_the_guilds_version_when_a_restriction_changes(greet, django_capture_on_commit_callbacks):
    with django_capture_on_commit_callbacks() as callbacks:
        command_update(guild_id=GUILD, name="greet", restriction_edit=RestrictionEdit.allow_role(VIP))
    assert len(callbacks) == 1
    with django_capture_on_commit_callbacks() as callbacks:
        command_update(guild_id=GUILD, name="greet", restriction_edit=RestrictionEdit.allow_role(VIP))
    assert callbacks == []  # nothing changed, nothing to reload


# -- the reads --------------------------------------------------------------------------
def test_it_gives_the_bots_the_lists_with_each_command(greet):
    command_update(guild_id=GUILD, name="greet", allowed_role_ids=[VIP], denied_role_ids=[MUTED], allowed_channel_ids=[BOTS])
    (row,) = list(commands_for_cache(guild_id=GUILD))
    assert row[-3:] == ([VIP], [MUTED], [BOTS])


def test_it_shows_the_restrictions_in_the_details(greet):
    assert "anyone may use it, anywhere" in command_describe(guild_id=GUILD, name="greet")
    command_update(guild_id=GUILD, name="greet", allowed_role_ids=[VIP], denied_role_ids=[MUTED], allowed_channel_ids=[BOTS])
    shown = command_describe(guild_id=GUILD, name="greet")
    assert f"only for: <@&{VIP}>" in shown and f"never for: <@&{MUTED}>" in shown and f"only in: <#{BOTS}>" in shown


# -- the refusal setting ----------------------------------------------------------------
def test_it_sets_the_refusal_per_guild(db):
    assert GuildSettings(guild_id=GUILD).command_refusal == "reply"
    guild_settings_update(guild_id=GUILD, command_refusal="silent")
    assert GuildSettings.objects.get(guild_id=GUILD).command_refusal == "silent"
    with pytest.raises(SettingsInvalid, match="`reply` or stays `silent`"):
        guild_settings_update(guild_id=GUILD, command_refusal="loud")
    assert GuildSettings.objects.get(guild_id=GUILD).command_refusal == "silent"


# -- guild bundles ----------------------------------------------------------------------
def test_it_carries_the_restrictions_in_a_guild_bundle_and_refuses_bad_ones(db):
    command_create(guild_id=GUILD, name="greet", template="hi", author_id=None, allowed_role_ids=[VIP])
    command_create(guild_id=GUILD, name="rules", template="be kind", author_id=None, allowed_channel_ids=[BOTS])
    out = io.StringIO()
    guild_export(guild_id=GUILD, out=out)
    lines = [json.loads(line) for line in out.getvalue().splitlines()]
    for line in lines:
        if line.get("@kind") == "command" and line["name"] == "rules":
            line["allowed_channel_ids"] = ["#general"]
    summary = guild_import(stream=io.StringIO("\n".join(json.dumps(line) for line in lines) + "\n"), as_guild=OTHER_GUILD)
    assert CustomCommand.objects.get(guild_id=OTHER_GUILD, name="greet").allowed_role_ids == [VIP]
    assert not CustomCommand.objects.filter(guild_id=OTHER_GUILD, name="rules").exists()
    assert "'#general' is not a Discord id" in "\n".join(summary.problems)
