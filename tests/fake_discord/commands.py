"""Application commands: validating and echoing what the bot registers, and building slash invocations.

Invocations are built from the schema the bot registered, so option types and ``resolved``
data are exactly what Discord would send for that schema, and a test that invokes a
command or option the bot never registered fails loudly instead of passing vacuously.
"""

from __future__ import annotations

import re
import secrets

from . import payloads
from .models import FakeGuild, next_snowflake
from .responses import form_error
from .state import FakeState

NAME = re.compile(r"^[-_\w]{1,32}$")
SUB_COMMAND, SUB_COMMAND_GROUP = 1, 2
STRING, INTEGER, BOOLEAN, USER, CHANNEL, ROLE, MENTIONABLE, NUMBER, ATTACHMENT = 3, 4, 5, 6, 7, 8, 9, 10, 11
ATTACHMENT_SIZE_LIMIT = 10 * 1024 * 1024


# --- registration -------------------------------------------------------------------------
def _check_name(path: str, name: object) -> object:
    if not isinstance(name, str) or not NAME.match(name) or name != name.lower():
        return form_error(f"{path}.name", "APPLICATION_COMMAND_INVALID_NAME", "Command name is invalid")
    return None


def _check_description(path: str, description: object) -> object:
    if not isinstance(description, str) or not 1 <= len(description) <= 100:
        return form_error(f"{path}.description", "BASE_TYPE_BAD_LENGTH", "Must be between 1 and 100 in length.")
    return None


def _check_options(path: str, options: list, *, depth: int) -> object:
    if len(options) > 25:
        return form_error(f"{path}.options", "BASE_TYPE_MAX_LENGTH", "Must be 25 or fewer in length.")
    names: set[str] = set()
    seen_optional = False
    for index, option in enumerate(options):
        here = f"{path}.options.{index}"
        problem = _check_name(here, option.get("name")) or _check_description(here, option.get("description"))
        if problem:
            return problem
        if option["name"] in names:
            return form_error(f"{path}.options", "APPLICATION_COMMAND_OPTIONS_NAME_ALREADY_EXISTS", "Option names must be unique")
        names.add(option["name"])
        kind = option.get("type")
        if kind not in range(1, 12):
            return form_error(f"{here}.type", "BASE_TYPE_CHOICES", f"Value must be one of (1..11), not {kind!r}.")
        if kind in (SUB_COMMAND, SUB_COMMAND_GROUP):
            if depth >= (1 if kind == SUB_COMMAND_GROUP else 2):
                return form_error(f"{here}.type", "APPLICATION_COMMAND_OPTION_TYPE_INVALID", "Sub-commands nest too deep")
            problem = _check_options(here, option.get("options") or [], depth=depth + (2 if kind == SUB_COMMAND else 1))
            if problem:
                return problem
            continue
        if len(option.get("choices") or ()) > 25:
            return form_error(f"{here}.choices", "BASE_TYPE_MAX_LENGTH", "Must be 25 or fewer in length.")
        if option.get("required"):
            if seen_optional:
                return form_error(
                    f"{path}.options",
                    "APPLICATION_COMMAND_OPTIONS_REQUIRED_INVALID",
                    "Required options must be placed before non-required options",
                )
        else:
            seen_optional = True
    return None


def validate_commands(commands: object) -> object:
    """Discord's checks on a bulk overwrite; an error response, or None if the list is valid."""
    if not isinstance(commands, list):
        return form_error("_", "BASE_TYPE_ARRAY", "Must be an array.")
    if len(commands) > 110:
        return form_error("_", "BASE_TYPE_MAX_LENGTH", "Must be 110 or fewer in length.")
    seen: set[tuple[int, str]] = set()
    for index, command in enumerate(commands):
        path, kind = str(index), command.get("type", 1)
        if kind == 1:
            problem = _check_name(path, command.get("name")) or _check_description(path, command.get("description"))
            problem = problem or _check_options(path, command.get("options") or [], depth=0)
        else:
            name = command.get("name")
            ok = isinstance(name, str) and 1 <= len(name) <= 32 and not command.get("description")
            problem = None if ok else form_error(f"{path}.name", "APPLICATION_COMMAND_INVALID_NAME", "Command name is invalid")
        if problem:
            return problem
        if (kind, command["name"]) in seen:
            return form_error(
                path, "APPLICATION_COMMANDS_DUPLICATE_NAME", f"Application command names must be unique ({command['name']})"
            )
        seen.add((kind, command["name"]))
    return None


def echo_commands(state: FakeState, commands: list, guild_id: int | None) -> list[dict]:
    """The registered command objects Discord returns, keeping ids of commands that already existed."""
    previous = {(c.get("type", 1), c["name"]): c["id"] for c in state.registered_commands.get(guild_id, ())}
    echoed = []
    for command in commands:
        kind = command.get("type", 1)
        permissions = command.get("default_member_permissions")
        item = dict(command)
        item.update(
            id=previous.get((kind, command["name"])) or str(next_snowflake()),
            application_id=str(state.app_id),
            version=str(next_snowflake()),
            type=kind,
            description=command.get("description") or "",
            default_member_permissions=None if permissions is None else str(permissions),
            nsfw=bool(command.get("nsfw", False)),
            name_localizations=command.get("name_localizations"),
            description_localizations=command.get("description_localizations"),
        )
        if kind == 1:
            item["options"] = command.get("options") or []
        if guild_id is None:
            item.setdefault("dm_permission", True)
            item.setdefault("contexts", None)
            item.setdefault("integration_types", [0])
        else:
            item["guild_id"] = str(guild_id)
        echoed.append(item)
    with state.lock:
        state.registered_commands[guild_id] = echoed
    return echoed


# --- invocation ---------------------------------------------------------------------------
def _snowflake_of(value: object) -> int:
    return int(getattr(value, "id", value))


def _leaf_value(state: FakeState, g: FakeGuild, user_id: int, option: dict, value: object, resolved: dict) -> object:
    kind, name = option["type"], option["name"]
    if kind == STRING:
        value = str(value)
        if not option.get("min_length", 0) <= len(value) <= option.get("max_length", 6000):
            raise ValueError(f"option {name!r}: length {len(value)} is outside what the command allows")
    elif kind == INTEGER:
        value = int(value)
    elif kind == NUMBER:
        value = float(value)
    elif kind == BOOLEAN:
        value = bool(value)
    if kind in (INTEGER, NUMBER) and not option.get("min_value", value) <= value <= option.get("max_value", value):
        raise ValueError(f"option {name!r}: {value} is outside [{option.get('min_value')}, {option.get('max_value')}]")
    if kind in (STRING, INTEGER, NUMBER, BOOLEAN):
        choices = [c["value"] for c in option.get("choices") or ()]
        if choices and value not in choices:
            raise ValueError(f"option {name!r}: {value!r} is not one of the choices {choices}")
        return value
    if kind == ATTACHMENT:
        raise ValueError(f"option {name!r}: attachment options are not supported by the fake")
    target = _snowflake_of(value)
    found_user = g.users.get(target) or state.find_user(target)
    found_role = g.role_by_id(target)
    if kind == USER or (kind == MENTIONABLE and found_user is not None):
        if found_user is None:
            raise ValueError(f"option {name!r}: no user {target} in the fake")
        resolved.setdefault("users", {})[str(target)] = payloads.user(found_user)
        if target in g.members:
            resolved.setdefault("members", {})[str(target)] = payloads.member(g, target, with_user=False, permissions=True)
    elif kind in (ROLE, MENTIONABLE):
        if found_role is None:
            raise ValueError(f"option {name!r}: guild {g.id} has no role {target}")
        resolved.setdefault("roles", {})[str(target)] = payloads.role(found_role)
    elif kind == CHANNEL:
        found = g.channel_by_id(target)
        if found is None:
            raise ValueError(f"option {name!r}: guild {g.id} has no channel {target}")
        allowed_types = option.get("channel_types")
        if allowed_types and found.type not in allowed_types:
            raise ValueError(f"option {name!r}: channel type {found.type} is not one of {allowed_types}")
        resolved.setdefault("channels", {})[str(target)] = payloads.channel(found, g.id) | {
            "permissions": str(g.permissions_of(user_id))
        }
    return str(target)


def _options(state: FakeState, g: FakeGuild, user_id: int, node: dict, given: object, resolved: dict, path: str) -> list[dict]:
    schema = node.get("options") or []
    if isinstance(given, tuple) and len(given) == 2 and isinstance(given[0], str):
        given = [given]  # ("set", {...}) is the same as [("set", {...})]
    if isinstance(given, (list, tuple)):
        if len(given) != 1:
            raise ValueError(f"{path}: give exactly one sub-command, not {given!r}")
        sub_name, sub_given = given[0]
        sub = next((o for o in schema if o["name"] == sub_name and o["type"] in (SUB_COMMAND, SUB_COMMAND_GROUP)), None)
        if sub is None:
            known = [o["name"] for o in schema if o["type"] in (SUB_COMMAND, SUB_COMMAND_GROUP)]
            raise ValueError(f"{path}: no sub-command {sub_name!r}; registered: {known}")
        if sub["type"] == SUB_COMMAND_GROUP and isinstance(sub_given, dict):
            raise ValueError(f"{path} {sub_name}: is a group; give [(sub_command, {{options}})]")
        inner = _options(state, g, user_id, sub, sub_given or {}, resolved, f"{path} {sub_name}")
        return [{"type": sub["type"], "name": sub_name, "options": inner}]
    given = dict(given or {})
    if any(o["type"] in (SUB_COMMAND, SUB_COMMAND_GROUP) for o in schema):
        raise ValueError(f"{path}: needs a sub-command, one of {[o['name'] for o in schema]}")
    out = []
    for option in schema:
        if option["name"] in given:
            value = _leaf_value(state, g, user_id, option, given.pop(option["name"]), resolved)
            out.append({"type": option["type"], "name": option["name"], "value": value})
        elif option.get("required"):
            raise ValueError(f"{path}: the required option {option['name']!r} is missing")
    if given:
        raise ValueError(f"{path}: unknown options {sorted(given)}; registered: {[o['name'] for o in schema]}")
    return out


def build_slash(state: FakeState, guild_id: int, channel_id: int, user_id: int, name: str, options: object) -> dict:
    """The INTERACTION_CREATE data of a slash command, from the schema the bot registered."""
    g = state.guilds[guild_id]
    if user_id not in g.members:
        raise ValueError(f"user {user_id} is not a member of guild {guild_id}")
    where = g.channel_by_id(channel_id)
    if where is None:
        raise ValueError(f"guild {guild_id} has no channel {channel_id}")
    schema, scope = state.command_schema(guild_id, name)
    resolved: dict = {}
    with state.lock:
        data = {
            "id": schema["id"],
            "name": name,
            "type": 1,
            "options": _options(state, g, user_id, schema, options, resolved, name),
        }
        if resolved:
            data["resolved"] = resolved
        if scope is not None:
            data["guild_id"] = str(scope)
        interaction = {
            "id": str(next_snowflake()),
            "application_id": str(state.app_id),
            "type": 2,
            "data": data,
            "guild_id": str(g.id),
            "guild": {"id": str(g.id), "locale": "en-US", "features": []},
            "channel_id": str(channel_id),
            "channel": payloads.channel(where, g.id) | {"permissions": str(g.permissions_of(user_id))},
            "member": payloads.member(g, user_id, permissions=True),
            "token": secrets.token_urlsafe(48),
            "version": 1,
            "app_permissions": str(g.permissions_of(state.bot_user.id)),
            "locale": "en-US",
            "guild_locale": "en-US",
            "entitlements": [],
            "authorizing_integration_owners": {"0": str(g.id)},
            "context": 0,
            "attachment_size_limit": ATTACHMENT_SIZE_LIMIT,
        }
        state.interactions[int(interaction["id"])] = interaction
    return interaction
