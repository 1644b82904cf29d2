"""Custom commands: naming rules, create/edit/delete, aliases, cooldowns and use."""

from __future__ import annotations

import re
import time

from django.core.cache import cache
from django.db import IntegrityError, transaction
from django.db.models import F
from django.utils import timezone

from commands.command_templates import compile_template
from commands.errors import CommandError, CommandExists, CommandNameInvalid, CommandNotFound, CommandOnCooldown
from commands.models import CommandAlias, CooldownScope, CustomCommand
from config.database import lock_for_transaction, retry_transient

NAME_PATTERN = re.compile(r"^[a-z0-9_-]{1,32}$")
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
    if not NAME_PATTERN.fullmatch(cleaned):
        raise CommandNameInvalid("A command name is 1 to 32 characters of a-z, 0-9, `_` and `-`.")
    if cleaned in BUILTIN_NAMES:
        raise CommandNameInvalid(f"`{cleaned}` is a built-in command; pick another name.")
    return cleaned


def commands_version(guild_id: int) -> int:
    """A number that changes whenever the guild's commands change (for the bot's cache)."""
    return cache.get(_version_key(guild_id), 0)


def _version_key(guild_id: int) -> str:
    return f"commands:version:{guild_id}"


def commands_version_bump(guild_id: int) -> None:
    """Tell every bot process that the guild's commands or settings changed."""
    # A fresh value rather than incr(): works the same on every cache backend and after eviction.
    cache.set(_version_key(guild_id), time.time_ns(), timeout=None)


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
        raise CommandNotFound(f"There is no command called `{name[:32]}`.")
    return command


def _after_commit_bump(guild_id: int) -> None:
    transaction.on_commit(lambda: commands_version_bump(guild_id))


@retry_transient()
def command_create(*, guild_id: int, name: str, template: str, author_id: int | None) -> CustomCommand:
    """Add a command; the name must be free (commands and aliases share one namespace)."""
    name = command_name_clean(name)
    compile_template(template)
    with transaction.atomic():
        # Names and aliases live in two tables; one lock per guild keeps them unique together.
        lock_for_transaction("command-names", guild_id)
        if _name_taken(guild_id, name):
            raise CommandExists(f"A command or alias called `{name}` already exists.")
        try:
            with transaction.atomic():
                command = CustomCommand.objects.create(guild_id=guild_id, name=name, template=template, author_id=author_id)
        except IntegrityError:
            raise CommandExists(f"A command or alias called `{name}` already exists.") from None
        _after_commit_bump(guild_id)
    return command


@retry_transient()
def command_edit(*, guild_id: int, name: str, template: str, editor_id: int | None) -> CustomCommand:
    """Replace a command's reply, recording who edited it and when."""
    compile_template(template)
    with transaction.atomic():
        command = _resolve_for_update(guild_id, name)
        command.template = template
        command.edited_at = timezone.now()
        if editor_id is not None:
            editors = [e for e in command.editor_ids if e != editor_id] + [editor_id]
            command.editor_ids = editors[-MAX_EDITORS_KEPT:]
        command.save(update_fields=["template", "edited_at", "editor_ids"])
        _after_commit_bump(guild_id)
    return command


@retry_transient()
def command_delete(*, guild_id: int, name: str) -> str:
    """Delete a command (by its name or an alias) with its aliases; return its name."""
    with transaction.atomic():
        command = _resolve_for_update(guild_id, name)
        deleted_name = command.name
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
            raise CommandError(f"`{command.name}` already has {MAX_ALIASES} aliases, the most it can have.")
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
            raise CommandNotFound(f"There is no alias called `{alias[:32]}`.")
        target = found.command.name
        found.delete()
        _after_commit_bump(guild_id)
    return target


@retry_transient()
def command_cooldown_set(*, guild_id: int, name: str, seconds: int, scope: str = CooldownScope.MEMBER) -> CustomCommand:
    """Set how often a command may be used: per member, per channel or per guild."""
    if not isinstance(seconds, int) or not 0 <= seconds <= MAX_COOLDOWN_SECONDS:
        raise CommandError(f"A cooldown is between 0 and {MAX_COOLDOWN_SECONDS} seconds.")
    if scope not in CooldownScope.values:
        raise CommandError("A cooldown applies per `member`, `channel` or `guild`.")
    with transaction.atomic():
        command = _resolve_for_update(guild_id, name)
        command.cooldown_seconds = seconds
        command.cooldown_scope = scope
        command.save(update_fields=["cooldown_seconds", "cooldown_scope"])
        _after_commit_bump(guild_id)
    return command


@retry_transient()
def command_enabled_set(*, guild_id: int, name: str, enabled: bool, note: str = "") -> CustomCommand:
    """Turn a command on or off without deleting it."""
    with transaction.atomic():
        command = _resolve_for_update(guild_id, name)
        command.enabled = enabled
        command.note = note[:200]
        command.save(update_fields=["enabled", "note"])
        _after_commit_bump(guild_id)
    return command


def command_cooldown_take(
    *, command_pk: int, name: str, seconds: int, scope: str, member_id: int, channel_id: int, now_ts: float | None = None
) -> None:
    """Start the command's cooldown for this caller, or raise CommandOnCooldown if it is running.

    The cooldown lives in the shared cache (``add`` is atomic there), so every bot
    process and shard sees the same one.
    """
    if not seconds:
        return
    scope_id = {"member": member_id, "channel": channel_id}.get(scope, 0)
    key = f"commands:cooldown:{command_pk}:{scope}:{scope_id}"
    now = time.time() if now_ts is None else now_ts
    if not cache.add(key, now + seconds, timeout=seconds):
        until = cache.get(key) or now
        wait = max(1, round(until - now))
        raise CommandOnCooldown(f"`{name}` is cooling down; try again in {wait}s.", retry_after=wait)


def command_use(*, command: CustomCommand, member_id: int, channel_id: int, now_ts: float | None = None) -> None:
    """Record one use of ``command``, or raise CommandOnCooldown when it is cooling down."""
    command_cooldown_take(
        command_pk=command.pk,
        name=command.name,
        seconds=command.cooldown_seconds,
        scope=command.cooldown_scope,
        member_id=member_id,
        channel_id=channel_id,
        now_ts=now_ts,
    )
    CustomCommand.objects.filter(pk=command.pk).update(usage_count=F("usage_count") + 1, last_used_at=timezone.now())
