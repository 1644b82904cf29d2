"""Per-guild settings for commands and cookies."""

from __future__ import annotations

from django.db import transaction

from commands.errors import SettingsInvalid
from commands.models import GuildSettings
from commands.notify import cookie_roles_resync_later
from commands.services.custom_commands import commands_version_bump
from config.database import retry_transient
from config.numbers import is_int

MAX_PREFIX_LENGTH = 8
EDITABLE = _EDITABLE = {
    "prefix",
    "manager_role_id",
    "cookie_pair_cooldown_seconds",
    "cookie_daily_cap",
    "cookie_message_cap",
    "cookie_allow_negative",
    "cookie_dm_receiver",
    "public_leaderboard",
    "command_refusal",
    "cookie_roles_keep_all",
    "thanks_enabled",
    "thanks_words",
}
MAX_THANKS_WORDS = 20
MAX_THANKS_WORD_LENGTH = 32


def guild_settings_get(guild_id: int) -> GuildSettings:
    """The guild's settings; an unsaved row with the defaults when it never changed any."""
    found = GuildSettings.objects.filter(guild_id=guild_id).first()
    return found if found is not None else GuildSettings(guild_id=guild_id)


def guild_setting_clean(field: str, value):
    """The value if ``field`` may take it, else SettingsInvalid saying why (for forms too)."""
    return _validate(field, value)


def _validate(field: str, value):
    if field == "prefix":
        if not isinstance(value, str) or not value or len(value) > MAX_PREFIX_LENGTH or any(c.isspace() for c in value):
            raise SettingsInvalid(f"The prefix must be 1 to {MAX_PREFIX_LENGTH} characters with no spaces.")
        if "@" in value or "<" in value or "`" in value:
            raise SettingsInvalid("The prefix can't contain `@`, `<` or backticks.")
    elif field == "cookie_pair_cooldown_seconds":
        if not is_int(value, minimum=0, maximum=86_400):
            raise SettingsInvalid("The cookie cooldown must be between 0 and 86400 seconds.")
    elif field == "cookie_daily_cap":
        if value is not None and not is_int(value, minimum=1, maximum=100_000):
            raise SettingsInvalid("The daily cookie cap must be between 1 and 100000, or none.")
    elif field == "cookie_message_cap":
        if not is_int(value, minimum=1, maximum=25):
            raise SettingsInvalid("The per-message cookie cap must be between 1 and 25.")
    elif field == "command_refusal":
        if value not in ("reply", "silent"):
            raise SettingsInvalid("A refused command is answered with a short `reply` or stays `silent`.")
    elif field == "manager_role_id":
        if value is not None and not is_int(value, minimum=1):
            raise SettingsInvalid("The manager role must be a role id.")
    elif field == "thanks_words":
        return thanks_words_clean(value)
    elif field in (
        "cookie_allow_negative",
        "cookie_dm_receiver",
        "public_leaderboard",
        "cookie_roles_keep_all",
        "thanks_enabled",
    ):
        if not isinstance(value, bool):
            raise SettingsInvalid(f"{field.replace('_', ' ')} must be on or off.")
    return value


def thanks_words_clean(value) -> list[str]:
    """A guild's thanks phrases, lower case and single-spaced, or SettingsInvalid saying why."""
    if value is None:
        return []  # an empty form field: the defaults
    if not isinstance(value, list) or len(value) > MAX_THANKS_WORDS:
        raise SettingsInvalid(f"The thanks words are a list of up to {MAX_THANKS_WORDS} phrases.")
    cleaned: list[str] = []
    for word in value:
        phrase = " ".join(word.lower().split()) if isinstance(word, str) else ""
        if not phrase or len(phrase) > MAX_THANKS_WORD_LENGTH or any(c in phrase for c in "<@`*_~|"):
            raise SettingsInvalid(
                f"A thanks phrase is 1 to {MAX_THANKS_WORD_LENGTH} characters of words, without mentions or formatting."
            )
        if phrase not in cleaned:
            cleaned.append(phrase)
    return cleaned


@retry_transient()
def guild_settings_update(*, guild_id: int, **changes) -> GuildSettings:
    """Change some of a guild's settings; unknown names or bad values change nothing."""
    unknown = set(changes) - _EDITABLE
    if unknown:
        raise SettingsInvalid(f"Unknown setting: {', '.join(sorted(unknown))}.")
    cleaned = {field: _validate(field, value) for field, value in changes.items()}
    with transaction.atomic():
        settings, _ = GuildSettings.objects.select_for_update().get_or_create(guild_id=guild_id)
        if "cookie_roles_keep_all" in cleaned and cleaned["cookie_roles_keep_all"] != settings.cookie_roles_keep_all:
            cookie_roles_resync_later(guild_id=guild_id, previous=[])  # members' roles follow the new mode
        for field, value in cleaned.items():
            setattr(settings, field, value)
        settings.save()
        transaction.on_commit(lambda: commands_version_bump(guild_id))
    return settings
