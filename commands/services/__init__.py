"""Writes for custom commands, cookies and guild settings (see the modules for each)."""

from commands.services.command_usage import command_cooldown_take, command_cooldowns_prune, command_uses_record
from commands.services.cookie_roles import CookieRolePlan, cookie_role_add, cookie_role_remove, cookie_roles_wanted
from commands.services.cookies import (
    CookieChange,
    cookie_give,
    cookie_mentions_parse,
    cookie_reset,
    cookie_set,
)
from commands.services.custom_commands import (
    BUILTIN_NAMES,
    NAME_PATTERN,
    command_alias_add,
    command_alias_remove,
    command_create,
    command_delete,
    command_name_clean,
    command_update,
    commands_version,
    commands_version_bump,
    guild_settings_stamp,
)
from commands.services.guild_settings import (
    EDITABLE as GUILD_SETTINGS_EDITABLE,
)
from commands.services.guild_settings import (
    guild_setting_clean,
    guild_settings_get,
    guild_settings_update,
)
from commands.services.thanks import thanks_mentions_parse, thanks_might_match, thanks_words
from commands.services.toplists import cookie_toplists_rebuild, cookie_windows_roll
