"""The Guildhall bot: intents, mentions policy, prefixes, error handling and extensions."""

from __future__ import annotations

import asyncio
import ctypes
import gc
import logging
import time
import types

import discord
from discord import app_commands
from discord.ext import commands
from django.conf import settings
from django.utils import timezone

from bots.guild_cache import GuildCache
from bots.ratelimit import shared_rate_limits
from config.database import is_transient
from config.errors import ApplicationError

logger = logging.getLogger(__name__)

EXTENSIONS = (
    "bots.cogs.builtins",
    "bots.cogs.custom_commands",
    "bots.cogs.cookies",
    "bots.cogs.timers",
    "bots.cogs.timer_members",  # after timers: it adds /timer settings to that group
    "bots.cogs.timer_bulk",  # after timers: it adds /timer bulk-add, bulk-clear and bulk-cancel
    "bots.cogs.guild_settings",
    "bots.cogs.heartbeat",
    "bots.cogs.directory",  # names of guilds, roles, channels and members, written in batches
)
GENERIC_FAILURE = "Something went wrong on my side; it has been logged."
# While the database is away (a restart, a failover): said instead of the generic failure.
DATABASE_AWAY = "Sorry, I can't reach my records right now. Please try again in a minute."


def guild_of(ctx: commands.Context) -> discord.Guild:
    """The server a guild-only command runs in (its checks keep DMs out; this says so to the type checker)."""
    if ctx.guild is None:
        raise commands.NoPrivateMessage("This command works in a server, not in DMs.")
    return ctx.guild


def bot_intents() -> discord.Intents:
    intents = discord.Intents.none()
    intents.guilds = True
    intents.members = True
    intents.guild_messages = True
    intents.message_content = True
    intents.dm_messages = True
    return intents


class GuildhallTree(app_commands.CommandTree):
    async def on_error(self, interaction: discord.Interaction, error: app_commands.AppCommandError) -> None:
        original = getattr(error, "original", error)
        if isinstance(original, ApplicationError) or isinstance(error, app_commands.CheckFailure):
            text = str(original)
        elif isinstance(error, app_commands.TransformerError):
            text = f"I couldn't read `{error.value}` as a {error.type.name.replace('_', ' ').lower()}."
        elif is_transient(original):
            logger.warning("slash command failed: the database is away: %s", original)
            text = DATABASE_AWAY
        else:
            logger.error("slash command failed", exc_info=original)
            text = GENERIC_FAILURE
        await send_private(interaction, text)


async def send_private(interaction: discord.Interaction, text: str) -> None:
    """Answer an interaction with an ephemeral line, whether or not it was answered already."""
    if interaction.response.is_done():
        await interaction.followup.send(text, ephemeral=True)
    else:
        await interaction.response.send_message(text, ephemeral=True)


# The bot has no voice features; skip discord.py's start-up warnings about voice libraries.
discord.VoiceClient.warn_nacl = False
discord.VoiceClient.warn_dave = False


def _store_user(state, data, *, cache: bool = True) -> discord.User:
    """discord.py's ``store_user`` (users held weakly, by id), refreshed when the payload differs
    in what the features show or check: name, display name, avatar, bot flag."""
    users = state._users
    user = users.get(int(data["id"]))
    if user is None:
        user = discord.User(state=state, data=data)
        if cache:
            users[user.id] = user
    elif (
        user.name != data["username"]
        or user.global_name != data.get("global_name")
        or user._avatar != data.get("avatar")
        or user.bot != data.get("bot", False)
        or user.discriminator != data.get("discriminator")
    ):
        user._update(data)
    return user


class GuildhallBot(commands.AutoShardedBot):
    """One process, one or more shards; the cogs hold the features."""

    def __init__(self, **options) -> None:
        options.setdefault("shard_count", settings.SHARD_COUNT)
        options.setdefault("shard_ids", settings.SHARD_IDS)
        options.setdefault("guild_ready_timeout", settings.DISCORD_GUILD_READY_TIMEOUT)
        # Discord's rate limits shared with the other shards and the workers (bots.ratelimit).
        self.rate_limits = shared_rate_limits()
        if self.rate_limits is not None:
            options.setdefault("http_trace", self.rate_limits.trace_config())
        super().__init__(
            command_prefix=self._prefix_for,
            intents=bot_intents(),
            allowed_mentions=discord.AllowedMentions(everyone=False, roles=False, users=True, replied_user=False),
            help_command=None,
            case_insensitive=True,
            tree_cls=GuildhallTree,
            # Only what the features need: no member list, a small message cache.
            member_cache_flags=discord.MemberCacheFlags.none(),
            chunk_guilds_at_startup=False,
            max_messages=100,
            **options,
        )
        # No member cache means discord.py builds a new User for each author, member and mention of
        # every message; keep them while something holds them (as discord.py does with a member
        # cache), refreshed from each payload that shows them changed.
        state = self._connection
        state.store_user = types.MethodType(_store_user, state)  # type: ignore[method-assign]  # no wrapper frame per user
        self.guild_cache = GuildCache()
        self.started_monotonic = time.monotonic()
        self.started_at = timezone.now()

    async def _prefix_for(self, bot: commands.Bot, message: discord.Message) -> list[str]:
        if message.guild is None:
            return [settings.GUILDHALL_DEFAULT_PREFIX]
        return [(await self.guild_cache.settings(message.guild.id)).prefix]

    async def setup_hook(self) -> None:
        for extension in EXTENSIONS:
            await self.load_extension(extension)
        synced = await self.tree.sync()
        logger.info("loaded %d extensions; synced %d slash commands", len(EXTENSIONS), len(synced))
        self._trim_task = asyncio.create_task(self._return_startup_memory(), name="return-startup-memory")

    async def _return_startup_memory(self) -> None:
        """Once the guilds have arrived (a large guild's GUILD_CREATE is parsed and dropped, as no member
        is cached), hand the freed heap back to the system: glibc keeps it otherwise, and it counts
        as the bot's resident memory for good."""
        await self.wait_until_ready()
        # Start-up's objects (modules, settings, the apps) live as long as the process: take them out of
        # the collector's reach, so its full passes walk only what the messages make (shorter GC pauses).
        gc.collect()
        gc.freeze()
        try:
            ctypes.CDLL(None).malloc_trim(0)
        except (AttributeError, OSError):  # not glibc
            pass

    async def close(self) -> None:
        await super().close()
        if self.rate_limits is not None:
            await self.rate_limits.close()

    def dispatch(self, event_name: str, /, *args, **kwargs) -> None:
        if event_name == "message":
            # One task per message rather than one per listener (the bot's and each cog's): the
            # wait_for() waiters, then on_message, which runs the cogs' listeners in turn.
            discord.Client.dispatch(self, event_name, *args, **kwargs)
            return
        super().dispatch(event_name, *args, **kwargs)

    async def on_message(self, message: discord.Message) -> None:
        # Cogs listen for cookies and custom commands, each failure reported on its own to
        # on_error as discord.py would; built-in commands go through here.
        for listener in self.extra_events.get("on_message", ()):
            try:  # discord.py's _run_event, inline: one coroutine less per listener and message
                await listener(message)
            except Exception:
                await self.on_error("on_message", message)
        if message.author.bot:
            return
        if message.guild is not None and not await self._names_builtin(message):
            return  # chatter or a custom command: the parser would only end in CommandNotFound, which is ignored
        await self.process_commands(message)

    async def _names_builtin(self, message: discord.Message) -> bool:
        """Whether a guild message is the prefix followed by a built-in command's name (what
        ``get_context`` would find): the only messages ``process_commands`` acts on. Skipping the
        others spares every chat line and custom-command hit a Context and a dispatched error."""
        assert message.guild is not None
        entry = self.guild_cache.fresh(message.guild.id)  # no await while fresh: the hot path
        prefix = (entry.settings if entry is not None else await self.guild_cache.settings(message.guild.id)).prefix
        content = message.content
        if not content.startswith(prefix):
            return False
        rest = content[len(prefix) :]
        if not rest or rest[0].isspace():
            return False  # discord.py reads an empty command name there
        return self.get_command(rest.split(None, 1)[0]) is not None

    async def on_command_error(self, ctx: commands.Context, error: commands.CommandError) -> None:
        if isinstance(error, commands.CommandNotFound):
            return  # custom commands and chatter are not errors
        original = getattr(error, "original", error)
        # A hybrid command used as a slash command wraps its error twice (HybridCommandError, CommandInvokeError).
        original = getattr(original, "original", original)
        if isinstance(original, ApplicationError):
            text = str(original)
        elif isinstance(error, (commands.UserInputError, commands.CheckFailure)):
            text = str(error) or "That command can't be used like that."
            if isinstance(error, commands.MissingRequiredArgument) and ctx.command is not None:
                text = f"Missing `{error.param.name}`. Usage: `{ctx.clean_prefix}{ctx.command.qualified_name} {ctx.command.signature}`"
        elif isinstance(error, commands.CommandOnCooldown):
            text = f"Slow down: try again in {error.retry_after:.0f}s."
        elif is_transient(original):
            logger.warning("command %s failed: the database is away: %s", ctx.command, original)
            text = DATABASE_AWAY
        else:
            logger.error("command %s failed", ctx.command, exc_info=original)
            text = GENERIC_FAILURE
        if ctx.interaction is not None:
            await ctx.send(text, ephemeral=True)
        else:
            await ctx.reply(text, mention_author=False)
