"""Custom commands: naming rules, create/update/delete, aliases, and the version the bots cache by."""

from __future__ import annotations

import logging
import re
import threading
import time

from django.core.cache import cache
from django.db import IntegrityError, transaction
from django.db.models import prefetch_related_objects
from django.utils import timezone

from commands.command_templates import compile_template
from commands.errors import CommandExists, CommandNameInvalid, CustomCommandError, CustomCommandMissing
from commands.models import CommandAlias, CooldownScope, CustomCommand, GuildSettings
from commands.restrictions import RestrictionEdit, restrictions_assign, restrictions_clean
from config.database import lock_for_transaction, retry_transient
from config.numbers import is_int
from guilds.services.log import by, log_record

logger = logging.getLogger(__name__)
_cache_down = threading.Event()  # to log an outage once, not on every check

# How a command name may be typed (any case; it is stored lower-cased). The API's path uses it too.
NAME_PATTERN = r"^[A-Za-z0-9_-]{1,32}$"
_NAME = re.compile(NAME_PATTERN)
MAX_COOLDOWN_SECONDS = 7 * 86_400
MAX_ALIASES = 10
MAX_EDITORS_KEPT = 25
# Built-ins and the management commands: a custom command may not take these names.
BUILTIN_NAMES = frozenset(
    {
        "help",
        "ping",
        "uptime",
        "roll",
        "dice",
        "8ball",
        "coinflip",
        "choose",
        "countdown",
        "addcommand",
        "removecommand",
        "listcommands",
        "command",
        "commands",
        "cookies",
        "cookie",
        "timer",
        "timers",
        "settings",
        "prefix",
    }
)


def command_name_clean(name: str) -> str:
    """Lower-case and check a command name; raise CommandNameInvalid with the rule."""
    cleaned = (name or "").strip().lower()
    if not _NAME.fullmatch(cleaned):
        raise CommandNameInvalid("A command name is 1 to 32 characters of a-z, 0-9, `_` and `-`.")
    if cleaned in BUILTIN_NAMES:
        raise CommandNameInvalid(f"`{cleaned}` is a built-in command; pick another name.")
    return cleaned


def commands_version(guild_id: int) -> int | None:
    """A number that changes whenever the guild's commands or settings change (for the bots' caches).

    It is only a hint to reload, so it may live in a cache that evicts: a lost value is
    replaced by a fresh one, which differs from whatever any bot holds, so every bot
    reloads from the database (a lost version costs one reload, never a stale guild).
    None when the shared cache can't be reached: the bots keep what they hold, and check the
    guild's settings stamp in the database instead (``guild_settings_stamp``).
    """
    key = _version_key(guild_id)
    try:
        version = cache.get(key)
        if version is None:
            cache.add(key, time.time_ns(), timeout=None)
            version = cache.get(key)
    except Exception as exc:  # Redis down or unreachable: a hint missing, nothing wrong with the data
        if not _cache_down.is_set():
            _cache_down.set()
            logger.warning("shared cache unreachable (%s): the bots check the database for changes", exc)
        return None
    if _cache_down.is_set():
        _cache_down.clear()
        logger.warning("shared cache reachable again")
    return version if version is not None else time.time_ns()


def _version_key(guild_id: int) -> str:
    return f"commands:version:{guild_id}"


def guild_settings_stamp(guild_id: int):
    """When the guild's settings row last changed (None: no row): what the bots compare when the
    shared cache could not carry a change (``commands_version_bump`` touches it then)."""
    return GuildSettings.objects.filter(guild_id=guild_id).values_list("updated_at", flat=True).first()


def commands_version_bump(guild_id: int) -> None:
    """Tell every bot process that the guild's commands or settings changed.

    Runs after the change committed, so it never fails: when the shared cache can't be
    written, the guild's settings row is touched instead (its ``updated_at`` is the stamp
    the bots check every ``DB_CHECK_SECONDS``), and when that fails too it is logged.
    """
    try:
        # A fresh value rather than incr(): works the same on every cache backend and after eviction.
        cache.set(_version_key(guild_id), time.time_ns(), timeout=None)
        return
    except Exception:
        logger.warning("shared cache unreachable: guild %s's change reaches the bots through the database", guild_id)
    try:
        if not GuildSettings.objects.filter(guild_id=guild_id).update(updated_at=timezone.now()):
            GuildSettings.objects.get_or_create(guild_id=guild_id)
    except Exception:
        logger.exception("could not tell the bots that guild %s changed; they reload it within minutes", guild_id)


def _name_taken(guild_id: int, name: str) -> bool:
    return (
        CustomCommand.objects.filter(guild_id=guild_id, name=name).exists()
        or CommandAlias.objects.filter(guild_id=guild_id, name=name).exists()
    )


def _resolve_for_update(guild_id: int, name: str) -> CustomCommand:
    """The command called ``name`` or aliased so, locked for the transaction."""
    name = (name or "").strip().lower()
    command = CustomCommand.objects.select_for_update().filter(guild_id=guild_id, name=name).first()
    if command is None:
        alias = CommandAlias.objects.filter(guild_id=guild_id, name=name).first()
        if alias is not None:
            command = CustomCommand.objects.select_for_update().get(pk=alias.command_id)
    if command is None:
        raise CustomCommandMissing(f"There is no command called `{name[:32]}`.")
    return command


def _check_fields(
    *,
    template: object,
    cooldown_seconds: object = None,
    cooldown_scope: object = None,
    enabled: object = None,
    note: object = None,
    member_id: object = None,
) -> None:
    """Refuse a bad value for any field given (None = not given), before anything is written."""
    if template is not None:
        if not isinstance(template, str):
            raise CustomCommandError("A command's reply is text.")
        compile_template(template)
    if cooldown_seconds is not None and not is_int(cooldown_seconds, minimum=0, maximum=MAX_COOLDOWN_SECONDS):
        raise CustomCommandError(f"A cooldown is a whole number of seconds between 0 and {MAX_COOLDOWN_SECONDS}.")
    if cooldown_scope is not None and cooldown_scope not in CooldownScope.values:
        raise CustomCommandError("A cooldown applies per `member`, `channel` or `guild`.")
    if enabled is not None and not isinstance(enabled, bool):
        raise CustomCommandError("A command is either enabled or disabled.")
    if note is not None and not isinstance(note, str):
        raise CustomCommandError("A note is text.")
    if member_id is not None and not is_int(member_id, minimum=1):
        raise CustomCommandError("An author or editor is a member id.")


# How the activity log names what an edit changed.
_EDITED = {"template": "reply", "cooldown_seconds": "cooldown", "cooldown_scope": "cooldown", "enabled": "on/off"}
_NOT_SHOWN = {"edited_at", "editor_ids"}


def _log_command(command: CustomCommand, kind: str, what: str, actor_id: int | None) -> None:
    text = f"Command `{command.name}` {what}{by(actor_id)}"
    log_record(guild_id=command.guild_id, kind=f"command.{kind}", text=text, actor_id=actor_id)


def _after_commit_bump(guild_id: int) -> None:
    transaction.on_commit(lambda: commands_version_bump(guild_id))


@retry_transient()
def command_create(
    *,
    guild_id: int,
    name: str,
    template: str,
    author_id: int | None,
    cooldown_seconds: int = 0,
    cooldown_scope: str = CooldownScope.MEMBER,
    enabled: bool = True,
    note: str = "",
    allowed_role_ids: list[int] | None = None,
    denied_role_ids: list[int] | None = None,
    allowed_channel_ids: list[int] | None = None,
) -> CustomCommand:
    """Add a command; the name must be free (commands and aliases share one namespace)."""
    name = command_name_clean(name)
    options = {"cooldown_seconds": cooldown_seconds, "cooldown_scope": cooldown_scope, "enabled": enabled, "note": note}
    _check_fields(template=template, member_id=author_id, **options)
    given = {"allowed_role_ids": allowed_role_ids, "denied_role_ids": denied_role_ids, "allowed_channel_ids": allowed_channel_ids}
    restrictions = restrictions_clean(given, guild_id=guild_id)
    fields = {**options, **restrictions, "template": template, "author_id": author_id, "note": note.strip()[:200]}
    with transaction.atomic():
        # Names and aliases live in two tables; one lock per guild keeps them unique together.
        lock_for_transaction("command-names", guild_id)
        if _name_taken(guild_id, name):
            raise CommandExists(f"A command or alias called `{name}` already exists.")
        try:
            with transaction.atomic():
                command = CustomCommand.objects.create(guild_id=guild_id, name=name, **fields)
        except IntegrityError:
            raise CommandExists(f"A command or alias called `{name}` already exists.") from None
        _after_commit_bump(guild_id)
        _log_command(command, "create", "created", author_id)
        prefetch_related_objects([command], "aliases")  # read before the commit: see command_update
    return command


@retry_transient()
def command_update(
    *,
    guild_id: int,
    name: str,
    template: str | None = None,
    cooldown_seconds: int | None = None,
    cooldown_scope: str | None = None,
    enabled: bool | None = None,
    note: str | None = None,
    editor_id: int | None = None,
    allowed_role_ids: list[int] | None = None,
    denied_role_ids: list[int] | None = None,
    allowed_channel_ids: list[int] | None = None,
    restriction_edit: RestrictionEdit | None = None,
) -> CustomCommand:
    """Change some of a command's reply, cooldown, enabled flag, note and restrictions, in one transaction.

    Only the fields given change; a bad value changes nothing. A new reply records who
    edited it and when. Turning a disabled command back on clears its note (the reason it
    was off) unless a note is given with it. Restriction lists given replace the stored
    ones; ``restriction_edit`` (chat's allow/deny/lift one role or channel) changes what the
    locked row holds.
    """
    given = {"allowed_role_ids": allowed_role_ids, "denied_role_ids": denied_role_ids, "allowed_channel_ids": allowed_channel_ids}
    lists = restrictions_clean(given, guild_id=guild_id)
    if (lists or restriction_edit) and (name or "").strip().lower() in BUILTIN_NAMES:
        raise CustomCommandError(f"`{name.strip().lower()}` is a built-in command; built-ins are never restricted.")
    _check_fields(
        template=template,
        cooldown_seconds=cooldown_seconds,
        cooldown_scope=cooldown_scope,
        enabled=enabled,
        note=note,
        member_id=editor_id,
    )
    with transaction.atomic():
        command = _resolve_for_update(guild_id, name)
        changed: list[str] = []
        if template is not None:
            command.template = template
            command.edited_at = timezone.now()
            if editor_id is not None:
                editors = [e for e in command.editor_ids if e != editor_id] + [editor_id]
                command.editor_ids = editors[-MAX_EDITORS_KEPT:]
            changed += ["template", "edited_at", "editor_ids"]
        if cooldown_seconds is not None:
            command.cooldown_seconds = cooldown_seconds
            changed.append("cooldown_seconds")
        if cooldown_scope is not None:
            command.cooldown_scope = cooldown_scope
            changed.append("cooldown_scope")
        if note is None and enabled and not command.enabled:
            note = ""
        if enabled is not None:
            command.enabled = enabled
            changed.append("enabled")
        if note is not None:
            command.note = note.strip()[:200]
            changed.append("note")
        changed += restrictions_assign(command, lists, restriction_edit, guild_id=guild_id)
        if changed:
            command.save(update_fields=changed)
            _after_commit_bump(guild_id)
            parts = dict.fromkeys(
                _EDITED.get(f, f.replace("_ids", "s").replace("_", " ")) for f in changed if f not in _NOT_SHOWN
            )
            _log_command(command, "edit", f"edited ({', '.join(parts)})", editor_id)
        # Everything a caller shows is read inside the transaction: once it has committed,
        # no further query can fail and make a saved change look failed.
        prefetch_related_objects([command], "aliases")
    return command


@retry_transient()
def command_delete(*, guild_id: int, name: str, actor_id: int | None = None) -> str:
    """Delete a command (by its name or an alias) with its aliases; return its name."""
    with transaction.atomic():
        command = _resolve_for_update(guild_id, name)
        deleted_name = command.name
        _log_command(command, "delete", "deleted", actor_id)
        command.delete()
        _after_commit_bump(guild_id)
    return deleted_name


@retry_transient()
def command_alias_add(*, guild_id: int, name: str, alias: str) -> CommandAlias:
    """Give a command another name."""
    alias = command_name_clean(alias)
    with transaction.atomic():
        lock_for_transaction("command-names", guild_id)
        command = _resolve_for_update(guild_id, name)
        if _name_taken(guild_id, alias):
            raise CommandExists(f"A command or alias called `{alias}` already exists.")
        if command.aliases.count() >= MAX_ALIASES:
            raise CustomCommandError(f"`{command.name}` already has {MAX_ALIASES} aliases, the most it can have.")
        created = CommandAlias.objects.create(guild_id=guild_id, name=alias, command=command)
        _after_commit_bump(guild_id)
    return created


@retry_transient()
def command_alias_remove(*, guild_id: int, alias: str) -> str:
    """Remove an alias; return the name of the command it pointed at."""
    alias = (alias or "").strip().lower()
    with transaction.atomic():
        found = CommandAlias.objects.select_related("command").filter(guild_id=guild_id, name=alias).first()
        if found is None:
            raise CustomCommandMissing(f"There is no alias called `{alias[:32]}`.")
        target = found.command.name
        found.delete()
        _after_commit_bump(guild_id)
    return target
