"""Custom commands through their services and selectors, on the real database."""

from __future__ import annotations

import pytest
from django.core.cache import cache

from commands.errors import (
    CommandExists,
    CommandNameInvalid,
    CustomCommandCooling,
    CustomCommandError,
    CustomCommandMissing,
    SettingsInvalid,
    TemplateInvalid,
)
from commands.models import CommandAlias, CustomCommand, GuildSettings
from commands.selectors import command_aliases, command_get, command_list, command_search
from commands.services import (
    command_alias_add,
    command_alias_remove,
    command_create,
    command_delete,
    command_name_clean,
    command_update,
    commands_version,
    commands_version_bump,
    guild_settings_get,
    guild_settings_update,
)
from tests.conftest import GUILD, OTHER_GUILD

AUTHOR = 500
EDITOR = 501

pytestmark = pytest.mark.django_db


def create(name: str = "hello", template: str = "Hello {user}!", guild_id: int = GUILD) -> CustomCommand:
    return command_create(guild_id=guild_id, name=name, template=template, author_id=AUTHOR)


# --- create / edit / delete ----------------------------------------------------------


def test_it_creates_a_command():
    command = create()
    stored = CustomCommand.objects.get(pk=command.pk)
    assert (stored.guild_id, stored.name, stored.template, stored.author_id) == (GUILD, "hello", "Hello {user}!", AUTHOR)
    assert stored.enabled is True
    assert stored.usage_count == 0
    assert stored.editor_ids == []
    assert stored.edited_at is None


def test_it_lower_cases_the_name():
    assert create(name="HeLLo").name == "hello"
    assert CustomCommand.objects.filter(guild_id=GUILD, name="hello").exists()


@pytest.mark.parametrize("name", ["a", "x" * 32, "abc_def-123", "9lives", "  padded  "])
def test_it_accepts_valid_names(name):
    assert create(name=name).name == name.strip()


@pytest.mark.parametrize("name", ["", " ", "x" * 33, "hi there", "héllo", "semi;colon", "dot.name", "a/b", "<@1>"])
def test_it_refuses_invalid_names(name):
    with pytest.raises(CommandNameInvalid, match="1 to 32 characters"):
        create(name=name)
    assert not CustomCommand.objects.exists()


@pytest.mark.parametrize("name", ["help", "dice", "8ball", "HELP", "Ping", "addCommand", "cookies"])
def test_it_refuses_built_in_names(name):
    with pytest.raises(CommandNameInvalid, match="built-in"):
        create(name=name)
    assert not CustomCommand.objects.exists()


def test_it_cleans_names():
    assert command_name_clean(" HeLLo ") == "hello"
    with pytest.raises(CommandNameInvalid):
        command_name_clean("8BALL")


def test_it_refuses_a_taken_name():
    create(name="hello")
    with pytest.raises(CommandExists, match="`hello` already exists"):
        create(name="HELLO", template="another")
    assert CustomCommand.objects.get(guild_id=GUILD, name="hello").template == "Hello {user}!"


def test_it_refuses_a_name_taken_by_an_alias():
    create(name="hello")
    command_alias_add(guild_id=GUILD, name="hello", alias="hi")
    with pytest.raises(CommandExists, match="`hi`"):
        create(name="hi")
    assert not CustomCommand.objects.filter(name="hi").exists()


def test_it_refuses_an_alias_taken_by_a_command():
    create(name="hello")
    create(name="bye", template="Bye!")
    with pytest.raises(CommandExists, match="`hello`"):
        command_alias_add(guild_id=GUILD, name="bye", alias="hello")
    assert not CommandAlias.objects.exists()


def test_it_refuses_an_alias_taken_by_another_alias():
    create(name="hello")
    create(name="bye", template="Bye!")
    command_alias_add(guild_id=GUILD, name="hello", alias="hi")
    with pytest.raises(CommandExists, match="`hi`"):
        command_alias_add(guild_id=GUILD, name="bye", alias="HI")
    assert CommandAlias.objects.get(name="hi").command.name == "hello"


def test_it_allows_the_same_name_in_another_guild():
    create(name="hello")
    create(name="hello", guild_id=OTHER_GUILD)
    assert CustomCommand.objects.filter(name="hello").count() == 2


def test_it_refuses_a_bad_template_on_create():
    with pytest.raises(TemplateInvalid):
        create(template="{0.__class__}")
    assert not CustomCommand.objects.exists()


def test_it_edits_a_command_and_records_the_editor():
    command = create()
    edited = command_update(guild_id=GUILD, name="hello", template="Hi {user.name}", editor_id=EDITOR)
    stored = CustomCommand.objects.get(pk=command.pk)
    assert stored.template == "Hi {user.name}"
    assert stored.editor_ids == [EDITOR]
    assert stored.edited_at is not None
    assert edited.edited_at == stored.edited_at


def test_it_keeps_editors_in_order_without_repeats():
    create()
    command_update(guild_id=GUILD, name="hello", template="one", editor_id=1)
    first = CustomCommand.objects.get(name="hello").edited_at
    command_update(guild_id=GUILD, name="hello", template="two", editor_id=2)
    command_update(guild_id=GUILD, name="hello", template="three", editor_id=1)
    stored = CustomCommand.objects.get(name="hello")
    assert stored.editor_ids == [2, 1]
    assert stored.edited_at >= first


def test_it_edits_through_an_alias():
    command = create()
    command_alias_add(guild_id=GUILD, name="hello", alias="hi")
    command_update(guild_id=GUILD, name="HI", template="changed", editor_id=EDITOR)
    assert CustomCommand.objects.get(pk=command.pk).template == "changed"


def test_it_refuses_a_bad_template_on_edit():
    command = create()
    with pytest.raises(TemplateInvalid):
        command_update(guild_id=GUILD, name="hello", template="{user!r}", editor_id=EDITOR)
    stored = CustomCommand.objects.get(pk=command.pk)
    assert stored.template == "Hello {user}!"
    assert stored.editor_ids == []
    assert stored.edited_at is None


def test_it_refuses_to_edit_a_missing_command():
    with pytest.raises(CustomCommandMissing, match="`nope`"):
        command_update(guild_id=GUILD, name="nope", template="x", editor_id=EDITOR)


def test_it_refuses_to_edit_a_command_of_another_guild():
    create(guild_id=OTHER_GUILD)
    with pytest.raises(CustomCommandMissing):
        command_update(guild_id=GUILD, name="hello", template="x", editor_id=EDITOR)
    assert CustomCommand.objects.get(guild_id=OTHER_GUILD).template == "Hello {user}!"


def test_it_deletes_a_command():
    create()
    assert command_delete(guild_id=GUILD, name="HELLO") == "hello"
    assert not CustomCommand.objects.exists()


def test_it_deletes_by_alias_with_all_aliases():
    create()
    create(name="other", template="stays")
    command_alias_add(guild_id=GUILD, name="hello", alias="hi")
    command_alias_add(guild_id=GUILD, name="hello", alias="hey")
    command_alias_add(guild_id=GUILD, name="other", alias="o")
    assert command_delete(guild_id=GUILD, name="hi") == "hello"
    assert list(CustomCommand.objects.values_list("name", flat=True)) == ["other"]
    assert list(CommandAlias.objects.values_list("name", flat=True)) == ["o"]


def test_it_refuses_to_delete_a_missing_command():
    create()
    with pytest.raises(CustomCommandMissing):
        command_delete(guild_id=GUILD, name="nope")
    assert CustomCommand.objects.count() == 1


# --- aliases -------------------------------------------------------------------------


def test_it_adds_and_removes_an_alias():
    command = create()
    alias = command_alias_add(guild_id=GUILD, name="hello", alias="Hi")
    assert (alias.name, alias.command_id, alias.guild_id) == ("hi", command.pk, GUILD)
    assert command_aliases(command=command) == ["hi"]
    assert command_alias_remove(guild_id=GUILD, alias="HI") == "hello"
    assert not CommandAlias.objects.exists()
    assert CustomCommand.objects.filter(pk=command.pk).exists()


def test_it_refuses_a_built_in_alias():
    create()
    with pytest.raises(CommandNameInvalid, match="built-in"):
        command_alias_add(guild_id=GUILD, name="hello", alias="help")
    assert not CommandAlias.objects.exists()


def test_it_refuses_an_alias_for_a_missing_command():
    with pytest.raises(CustomCommandMissing):
        command_alias_add(guild_id=GUILD, name="nope", alias="n")
    assert not CommandAlias.objects.exists()


def test_it_refuses_to_remove_a_missing_alias():
    create()
    with pytest.raises(CustomCommandMissing, match="no alias"):
        command_alias_remove(guild_id=GUILD, alias="hello")  # a command name is not an alias
    assert CustomCommand.objects.count() == 1


def test_it_caps_the_number_of_aliases():
    create()
    for i in range(10):
        command_alias_add(guild_id=GUILD, name="hello", alias=f"h{i}")
    with pytest.raises(CustomCommandError, match="10 aliases"):
        command_alias_add(guild_id=GUILD, name="hello", alias="h10")
    assert CommandAlias.objects.count() == 10


# --- cooldown and enabled ------------------------------------------------------------


def test_it_sets_a_cooldown():
    command = create()
    command_update(guild_id=GUILD, name="hello", cooldown_seconds=30, cooldown_scope="channel")
    stored = CustomCommand.objects.get(pk=command.pk)
    assert (stored.cooldown_seconds, stored.cooldown_scope) == (30, "channel")


@pytest.mark.parametrize(
    "seconds,scope",
    [(-1, "member"), (7 * 86_400 + 1, "member"), (10, "planet"), (1.5, "member"), (True, "member"), (False, "guild")],
)
def test_it_refuses_a_bad_cooldown(seconds, scope):
    command = create()
    with pytest.raises(CustomCommandError):
        command_update(guild_id=GUILD, name="hello", cooldown_seconds=seconds, cooldown_scope=scope)
    stored = CustomCommand.objects.get(pk=command.pk)
    assert (stored.cooldown_seconds, stored.cooldown_scope) == (0, "member")


def test_it_disables_and_enables_a_command():
    command = create()
    command_update(guild_id=GUILD, name="hello", enabled=False, note="spam")
    stored = CustomCommand.objects.get(pk=command.pk)
    assert (stored.enabled, stored.note) == (False, "spam")
    command_update(guild_id=GUILD, name="hello", enabled=True)
    stored = CustomCommand.objects.get(pk=command.pk)
    assert (stored.enabled, stored.note) == (True, "")


def test_it_keeps_the_note_when_a_change_does_not_turn_the_command_on():
    command = create()
    command_update(guild_id=GUILD, name="hello", enabled=False, note="spam")
    command_update(guild_id=GUILD, name="hello", cooldown_seconds=5)
    command_update(guild_id=GUILD, name="hello", enabled=False)
    assert CustomCommand.objects.get(pk=command.pk).note == "spam"
    command_update(guild_id=GUILD, name="hello", enabled=True, note="back after review")
    assert CustomCommand.objects.get(pk=command.pk).note == "back after review"


def test_it_updates_every_field_in_one_call():
    command = create()
    command_update(
        guild_id=GUILD,
        name="hello",
        template="Hi {user.name}",
        cooldown_seconds=30,
        cooldown_scope="guild",
        enabled=False,
        note="quiet week",
        editor_id=EDITOR,
    )
    stored = CustomCommand.objects.get(pk=command.pk)
    assert (stored.template, stored.cooldown_seconds, stored.cooldown_scope) == ("Hi {user.name}", 30, "guild")
    assert (stored.enabled, stored.note, stored.editor_ids) == (False, "quiet week", [EDITOR])


@pytest.mark.parametrize(
    "bad",
    [
        {"template": "{0.__class__}"},
        {"cooldown_seconds": True},
        {"cooldown_scope": "planet"},
        {"enabled": 1},
        {"editor_id": True},
        {"note": 5},
    ],
    ids=["template", "bool_seconds", "scope", "int_enabled", "bool_editor", "note"],
)
def test_a_bad_field_changes_none_of_the_others(bad):
    command = create()
    with pytest.raises(CustomCommandError):
        command_update(guild_id=GUILD, name="hello", **{"template": "changed", "cooldown_seconds": 9, "enabled": False, **bad})
    stored = CustomCommand.objects.get(pk=command.pk)
    assert (stored.template, stored.cooldown_seconds, stored.enabled, stored.edited_at) == ("Hello {user}!", 0, True, None)


def test_it_creates_a_command_with_its_options_in_one_call():
    command = command_create(
        guild_id=GUILD, name="rules", template="Be kind", author_id=AUTHOR, cooldown_seconds=10, enabled=False, note="draft"
    )
    stored = CustomCommand.objects.get(pk=command.pk)
    assert (stored.cooldown_seconds, stored.enabled, stored.note) == (10, False, "draft")


@pytest.mark.parametrize("options", [{"cooldown_seconds": True}, {"author_id": True}, {"enabled": 0}])
def test_it_refuses_booleans_for_numbers_and_numbers_for_booleans_on_create(options):
    with pytest.raises(CustomCommandError):
        command_create(guild_id=GUILD, name="rules", template="Be kind", **{"author_id": AUTHOR, **options})
    assert not CustomCommand.objects.exists()


# --- commands_version ----------------------------------------------------------------


def _changes_version_after_commit(django_capture_on_commit_callbacks, change) -> None:
    before = commands_version(GUILD)
    with django_capture_on_commit_callbacks(execute=False) as callbacks:
        change()
    assert commands_version(GUILD) == before  # not before the commit
    assert callbacks
    for callback in callbacks:
        callback()
    assert commands_version(GUILD) != before


def test_it_changes_the_version_after_create(django_capture_on_commit_callbacks):
    _changes_version_after_commit(django_capture_on_commit_callbacks, lambda: create())


@pytest.mark.parametrize(
    "change",
    [
        lambda: command_update(guild_id=GUILD, name="hello", template="x", editor_id=EDITOR),
        lambda: command_delete(guild_id=GUILD, name="hello"),
        lambda: command_alias_add(guild_id=GUILD, name="hello", alias="hi"),
        lambda: command_update(guild_id=GUILD, name="hello", cooldown_seconds=5),
        lambda: command_update(guild_id=GUILD, name="hello", enabled=False),
    ],
    ids=["template", "delete", "alias_add", "cooldown", "enabled"],
)
def test_it_changes_the_version_after_a_change(django_capture_on_commit_callbacks, change):
    with django_capture_on_commit_callbacks(execute=True):
        create()
    _changes_version_after_commit(django_capture_on_commit_callbacks, change)


def test_it_changes_the_version_after_alias_remove(django_capture_on_commit_callbacks):
    with django_capture_on_commit_callbacks(execute=True):
        create()
        command_alias_add(guild_id=GUILD, name="hello", alias="hi")
    _changes_version_after_commit(django_capture_on_commit_callbacks, lambda: command_alias_remove(guild_id=GUILD, alias="hi"))


def test_it_keeps_the_version_when_a_change_is_refused(django_capture_on_commit_callbacks):
    with django_capture_on_commit_callbacks(execute=True):
        create()
    before = commands_version(GUILD)
    with django_capture_on_commit_callbacks(execute=True) as callbacks:
        with pytest.raises(CommandExists):
            create()
        with pytest.raises(TemplateInvalid):
            command_update(guild_id=GUILD, name="hello", template="{", editor_id=EDITOR)
    assert callbacks == []
    assert commands_version(GUILD) == before


def test_it_keeps_versions_per_guild(django_capture_on_commit_callbacks):
    before = commands_version(GUILD)
    with django_capture_on_commit_callbacks(execute=True):
        create(guild_id=OTHER_GUILD)
    assert commands_version(GUILD) == before


def test_a_lost_version_makes_every_holder_reload():
    """The version is a hint in a cache that may evict: losing it must never leave a bot on stale commands."""
    held = commands_version(GUILD)  # what a bot loaded with, before the guild ever changed
    commands_version_bump(GUILD)
    cache.delete(f"commands:version:{GUILD}")  # evicted or culled before the bot looked again
    assert commands_version(GUILD) != held
    assert commands_version(GUILD) == commands_version(GUILD)  # and it stays put until the next change


@pytest.mark.django_db(transaction=True)
def test_it_changes_the_version_on_a_real_commit():
    before = commands_version(GUILD)
    create()
    after_create = commands_version(GUILD)
    assert after_create != before
    command_update(guild_id=GUILD, name="hello", template="x", editor_id=EDITOR)
    assert commands_version(GUILD) != after_create


# --- selectors -----------------------------------------------------------------------


def test_it_gets_a_command_by_name_and_alias():
    command = create()
    command_alias_add(guild_id=GUILD, name="hello", alias="hi")
    assert command_get(guild_id=GUILD, name="hello").pk == command.pk
    assert command_get(guild_id=GUILD, name=" HELLO ").pk == command.pk
    assert command_get(guild_id=GUILD, name="hi").pk == command.pk
    assert command_get(guild_id=GUILD, name="nope") is None
    assert command_get(guild_id=OTHER_GUILD, name="hello") is None
    assert command_get(guild_id=OTHER_GUILD, name="hi") is None


def test_it_lists_a_guilds_commands_by_name():
    for name in ["zeta", "alpha", "mid"]:
        create(name=name)
    create(name="elsewhere", guild_id=OTHER_GUILD)
    assert [c.name for c in command_list(guild_id=GUILD)] == ["alpha", "mid", "zeta"]
    assert [c.name for c in command_list(guild_id=OTHER_GUILD)] == ["elsewhere"]


def test_it_searches_names_and_replies():
    create(name="cookiejar", template="jar")
    create(name="greet", template="Have a COOKIE, {user}")
    create(name="bye", template="Bye")
    create(name="cookie-other", template="x", guild_id=OTHER_GUILD)
    found = [c.name for c in command_search(guild_id=GUILD, query="cookie")]
    assert sorted(found) == ["cookiejar", "greet"]
    assert [c.name for c in command_search(guild_id=GUILD, query="BYE")] == ["bye"]
    assert list(command_search(guild_id=GUILD, query="nothing-like-this")) == []


def test_it_searches_with_name_matches_first():
    create(name="alpha", template="has a cookie in the reply")
    create(name="zcookie", template="plain")
    assert [c.name for c in command_search(guild_id=GUILD, query="cookie")] == ["zcookie", "alpha"]


def test_it_caps_search_results():
    for i in range(30):
        create(name=f"cmd{i:02d}")
    assert len(command_search(guild_id=GUILD, query="cmd")) == 25


# --- guild settings ------------------------------------------------------------------


def test_it_gives_defaults_for_a_guild_without_settings():
    settings = guild_settings_get(GUILD)
    assert settings.pk is None
    assert settings.prefix == "!!"
    assert settings.cookie_pair_cooldown_seconds == 60


def test_it_updates_guild_settings():
    guild_settings_update(guild_id=GUILD, prefix="?", cookie_daily_cap=3, cookie_allow_negative=False)
    stored = GuildSettings.objects.get(guild_id=GUILD)
    assert (stored.prefix, stored.cookie_daily_cap, stored.cookie_allow_negative) == ("?", 3, False)
    assert guild_settings_get(GUILD).prefix == "?"
    assert guild_settings_get(OTHER_GUILD).prefix == "!!"


@pytest.mark.parametrize(
    "changes,message",
    [
        ({"prefix": "a b"}, "no spaces"),
        ({"prefix": "!!!!!!!!!"}, "1 to 8"),
        ({"prefix": ""}, "1 to 8"),
        ({"prefix": "@"}, "can't contain"),
        ({"cookie_daily_cap": 0}, "between 1 and 100000"),
        ({"cookie_pair_cooldown_seconds": -1}, "between 0 and 86400"),
        ({"cookie_message_cap": 26}, "between 1 and 25"),
        ({"cookie_allow_negative": "yes"}, "on or off"),
        ({"nonsense": 1}, "Unknown setting: nonsense"),
        ({"prefix": "?", "cookie_daily_cap": 0}, "daily cookie cap"),
        ({"prefix": "?", "updated_at": None}, "Unknown setting: updated_at"),
    ],
)
def test_it_refuses_bad_settings_and_changes_nothing(changes, message):
    guild_settings_update(guild_id=GUILD, prefix="$", cookie_daily_cap=7)
    with pytest.raises(SettingsInvalid, match=message):
        guild_settings_update(guild_id=GUILD, **changes)
    stored = GuildSettings.objects.get(guild_id=GUILD)
    assert (stored.prefix, stored.cookie_daily_cap, stored.cookie_pair_cooldown_seconds) == ("$", 7, 60)
    assert stored.cookie_message_cap == 5
    assert stored.cookie_allow_negative is True


def test_it_creates_no_settings_row_on_a_refused_first_update():
    with pytest.raises(SettingsInvalid):
        guild_settings_update(guild_id=GUILD, prefix="has space")
    assert not GuildSettings.objects.filter(guild_id=GUILD).exists()
