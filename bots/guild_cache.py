"""What the bot keeps in memory per guild: prefix, rules and compiled custom commands.

Entries are checked against the guild's version key in the shared cache at most every
``CHECK_SECONDS``, so a change made by the web process or another shard reaches this one
within that time, and a plain chat message costs no database query and no cache call.

The version key is a hint that can go missing (Redis down while a change was made), so an
entry in use is also checked against the guild's settings stamp in the database at most
every ``DB_CHECK_SECONDS`` (``commands_version_bump`` touches it when it can't reach the
cache): a missed change reaches the bot within that time, Redis or not. While Redis is
down the bot keeps answering from what it holds, and reloads once it answers again.
"""

from __future__ import annotations

import asyncio
import logging
import time
from collections import Counter
from dataclasses import dataclass, field

from asgiref.sync import sync_to_async
from django.utils import timezone

from bots.db import call
from commands.command_templates import CompiledTemplate, compile_template
from commands.errors import CustomCommandError
from commands.models import GuildSettings
from commands.restrictions import CommandRestriction, restriction_compile
from commands.selectors import command_aliases_for_cache, commands_for_cache
from commands.services import command_uses_record, commands_version, guild_settings_get, guild_settings_stamp

logger = logging.getLogger(__name__)
# A change must be used within 2 s (tests/bots/test_cache_coherence.py): a check each second, plus the
# reload, keeps it there; it costs one cache GET per active guild per second, none per message.
CHECK_SECONDS = 1.0
DB_CHECK_SECONDS = 10.0


@dataclass(frozen=True)
class CachedCommand:
    pk: int
    name: str
    compiled: CompiledTemplate | None  # None when the stored template no longer compiles
    enabled: bool
    cooldown_seconds: int
    cooldown_scope: str
    restriction: CommandRestriction | None = None  # None: anyone, anywhere (commands.restrictions)


@dataclass
class GuildEntry:
    version: int | None  # None: loaded while the shared cache was unreachable
    settings: GuildSettings
    commands: dict[str, CachedCommand] | None = None  # loaded on the first command message
    checked_at: float = field(default_factory=time.monotonic)
    db_checked_at: float = field(default_factory=time.monotonic)


def _load_settings(guild_id: int) -> tuple[int | None, GuildSettings]:
    return commands_version(guild_id), guild_settings_get(guild_id)


def _version_current(guild_id: int, entry: GuildEntry) -> bool:
    """Whether ``entry`` still has the guild's version in the shared cache (no database)."""
    version = commands_version(guild_id)
    if version is not None and version != entry.version:
        return False
    if version is None and entry.version is not None:
        entry.version = None  # reload once the cache answers again: a change may have gone unannounced
    return True


def _stamp_current(guild_id: int, entry: GuildEntry) -> bool:
    """Whether ``entry`` still has the guild's settings stamp in the database."""
    return guild_settings_stamp(guild_id) == entry.settings.updated_at


# The check each second reads the shared cache only, in a thread of its own: through the bot's one
# database thread a hit waited behind whatever was queued there (a directory flush, cookie gives),
# which made custom-command replies the slowest at 20 messages/s on PostgreSQL (bench/capacity.py).
_check_version = sync_to_async(_version_current, thread_sensitive=False)


def _load_commands(guild_id: int) -> dict[str, CachedCommand]:
    found: dict[str, CachedCommand] = {}
    by_pk: dict[int, CachedCommand] = {}
    rows = commands_for_cache(guild_id=guild_id).iterator(chunk_size=2000)
    for pk, name, template, enabled, cooldown, scope, allowed, denied, channels in rows:
        try:
            compiled = compile_template(template)
        except CustomCommandError:
            compiled = None
        restriction = restriction_compile(allowed, denied, channels)
        by_pk[pk] = found[name] = CachedCommand(pk, name, compiled, enabled, cooldown, scope, restriction)
    for alias, command_pk in command_aliases_for_cache(guild_id=guild_id):
        if command_pk in by_pk:
            found[alias] = by_pk[command_pk]
    return found


class GuildCache:
    """Per-process cache of guild configuration and commands."""

    def __init__(self) -> None:
        self._guilds: dict[int, GuildEntry] = {}
        self._usage: Counter[int] = Counter()
        # One load per guild at a time: messages arriving together share it.
        self._loading: dict[tuple[str, int], asyncio.Task] = {}
        self._stamp_checks: set[asyncio.Future] = set()  # held until done (the loop keeps only weak references)

    async def _once(self, kind: str, guild_id: int, load):
        key = (kind, guild_id)
        task = self._loading.get(key)
        if task is None:
            task = self._loading[key] = asyncio.ensure_future(load())
            task.add_done_callback(lambda _: self._loading.pop(key, None))
        return await asyncio.shield(task)

    async def entry(self, guild_id: int) -> GuildEntry:
        entry = self._guilds.get(guild_id)
        now = time.monotonic()
        if entry is not None and now - entry.checked_at < CHECK_SECONDS:
            return entry
        return await self._once("entry", guild_id, lambda: self._refresh(guild_id, entry))

    async def _refresh(self, guild_id: int, entry: GuildEntry | None) -> GuildEntry:
        if entry is not None:
            try:
                current = await _check_version(guild_id, entry)
            except Exception:  # the cache is away: answer from what this process holds
                logger.warning("guild %s: could not check for changes; answering from memory", guild_id)
                current = True
            if current:
                entry.checked_at = time.monotonic()
                if entry.checked_at - entry.db_checked_at >= DB_CHECK_SECONDS:
                    # The database's stamp (a change the cache missed) is checked beside the messages, not
                    # before one: the entry is dropped if it is out of date, and the next message reloads.
                    entry.db_checked_at = entry.checked_at
                    self._stamp_checks.add(task := asyncio.ensure_future(self._check_stamp(guild_id, entry)))
                    task.add_done_callback(self._stamp_checks.discard)
                return entry
        try:
            version, settings = await call(_load_settings, guild_id=guild_id)
        except Exception:
            if entry is None:
                raise
            # The database is away: what this process holds beats silence; reload at the next check.
            logger.warning("guild %s: could not reload its commands; answering from memory", guild_id)
            entry.checked_at = time.monotonic()
            return entry
        entry = self._guilds[guild_id] = GuildEntry(version=version, settings=settings)
        return entry

    async def _check_stamp(self, guild_id: int, entry: GuildEntry) -> None:
        try:
            current = await call(_stamp_current, guild_id=guild_id, entry=entry)
        except Exception:  # the database is away: keep answering from memory; checked again later
            logger.warning("guild %s: could not check the settings stamp; answering from memory", guild_id)
            return
        if not current and self._guilds.get(guild_id) is entry:
            self._guilds.pop(guild_id, None)

    def fresh(self, guild_id: int) -> GuildEntry | None:
        """The guild's entry if it was checked within ``CHECK_SECONDS`` (no await: the message path's fast case)."""
        entry = self._guilds.get(guild_id)
        if entry is not None and time.monotonic() - entry.checked_at < CHECK_SECONDS:
            return entry
        return None

    async def settings(self, guild_id: int) -> GuildSettings:
        entry = self.fresh(guild_id)
        return (entry if entry is not None else await self.entry(guild_id)).settings

    async def command(self, guild_id: int, name: str) -> CachedCommand | None:
        entry = self.fresh(guild_id)
        if entry is not None and entry.commands is not None:
            return entry.commands.get(name)
        entry = await self.entry(guild_id)
        if entry.commands is None:
            loaded = await self._once("commands", guild_id, lambda: call(_load_commands, guild_id=guild_id))
            if entry.commands is None:
                entry.commands = loaded
        return entry.commands.get(name)

    def forget(self, guild_id: int) -> None:
        """Drop a guild's entry (after this process changed it)."""
        self._guilds.pop(guild_id, None)

    def count_use(self, command_pk: int) -> None:
        """Count a use in memory; ``flush_usage`` writes the counts in one go."""
        self._usage[command_pk] += 1

    async def flush_usage(self) -> int:
        """Write the uses counted since the last flush (``command_uses_record``); return how many."""
        if not self._usage:
            return 0
        counts, self._usage = dict(self._usage), Counter()
        try:
            return await call(command_uses_record, counts=counts, at=timezone.now())
        except Exception:
            self._usage.update(counts)  # kept for the next flush rather than lost
            raise
