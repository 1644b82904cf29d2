"""Custom commands in chat: use them (`!!name args`), and manage them (Praetbot forms and /command)."""

from __future__ import annotations

import logging

import discord
from discord import app_commands
from discord.ext import commands

from bots.bot import DATABASE_AWAY, guild_of
from bots.checks import command_manager
from bots.command_access import NO_PINGS, RefusalThrottle, refusal_for, refusal_text
from bots.converters import WholeNumber
from bots.db import call
from bots.guild_cache import CachedCommand
from commands.command_templates import RenderContext, defuse_mentions
from commands.errors import CustomCommandCooling
from commands.restrictions import RestrictionEdit, restriction_lines
from commands.selectors import command_describe, command_names_page, command_raw, cookie_balance
from commands.services import (
    command_alias_add,
    command_alias_remove,
    command_cooldown_take,
    command_create,
    command_delete,
    command_update,
)
from config.database import is_transient

logger = logging.getLogger(__name__)
# The `type: ignore[arg-type]` on hybrid command decorators: discord.py 2.7's hybrid_command
# leaves its Context type variable unsolved under mypy 2, so every such signature is refused.
MAX_REPLY = 2000
RULES = ("allow-role", "deny-role", "allow-channel")


def _join_names(names: list[str], prefix: str, empty: str) -> str:
    if not names:
        return empty
    text = ""
    for index, name in enumerate(names):
        piece = f"`{prefix}{name}`"
        if len(text) + len(piece) + 40 > MAX_REPLY:
            return f"{text} … and {len(names) - index} more"
        text = f"{text}, {piece}" if text else piece
    return text


class CustomCommands(commands.Cog):
    def __init__(self, bot) -> None:
        self.bot = bot
        self.refusals = RefusalThrottle()

    # -- using them ---------------------------------------------------------------------
    @commands.Cog.listener("on_message")
    async def run_custom_command(self, message: discord.Message) -> None:
        if message.author.bot or message.guild is None:
            return
        content = message.content
        if not content:
            return
        guild_id = message.guild.id
        cache = self.bot.guild_cache
        entry = cache.fresh(guild_id)  # no await while the guild's entry is fresh: the hot path
        prefix = (entry.settings if entry is not None else await cache.settings(guild_id)).prefix
        if not content.startswith(prefix) or len(content) == len(prefix):
            return
        words = content[len(prefix) :].split()
        if not words:
            return
        name = words[0].lower()
        if self.bot.get_command(name) is not None:
            return  # a built-in; process_commands handles it
        if entry is not None and entry.commands is not None:
            cached = entry.commands.get(name)
        else:
            cached = await cache.command(guild_id, name)
        if cached is None or not cached.enabled or cached.compiled is None:
            return  # unknown names are chatter, not errors
        if cached.restriction is not None and await self._refused(message, cached, prefix + name):
            return
        try:
            if cached.cooldown_seconds:
                await call(
                    command_cooldown_take,
                    command_pk=cached.pk,
                    name=cached.name,
                    seconds=cached.cooldown_seconds,
                    scope=cached.cooldown_scope,
                    member_id=message.author.id,
                    channel_id=message.channel.id,
                )
            cookies = None
            if cached.compiled.uses_cookies:
                cookies = await call(cookie_balance, guild_id=guild_id, member_id=message.author.id)
        except CustomCommandCooling as exc:
            await message.reply(str(exc), mention_author=False)
            return
        except Exception as exc:
            if not is_transient(exc):
                raise
            logger.warning("custom command %s: the database is away: %s", cached.name, exc)
            await message.reply(DATABASE_AWAY, mention_author=False)
            return
        ctx = RenderContext(
            user_id=message.author.id,
            user_name=message.author.display_name,
            channel_id=message.channel.id,
            guild_name=message.guild.name,
            args=tuple(words[1:]),
            cookies=cookies,
        )
        text = cached.compiled.render(ctx)
        self.bot.guild_cache.count_use(cached.pk)
        if text.strip():
            await message.channel.send(text)

    async def _refused(self, message: discord.Message, cached: CachedCommand, shown: str) -> bool:
        """Whether the author may not use ``cached`` here; tells them why unless the guild is silent."""
        reason = refusal_for(cached, message.author, message.channel)
        if reason is None:
            return False
        assert message.guild is not None
        settings = await self.bot.guild_cache.settings(message.guild.id)
        if settings.command_refusal == "reply" and self.refusals.may_tell(message.author.id, cached.pk):
            await message.reply(refusal_text(shown, reason), mention_author=False, allowed_mentions=NO_PINGS)
        return True

    # -- Praetbot's management forms ----------------------------------------------------
    @commands.command(name="addCommand")
    @command_manager()
    async def add_command(self, ctx: commands.Context, name: str, *, template: str) -> None:
        """Add a custom command: addCommand <name> <reply>."""
        await self._add(ctx, name, template)

    @commands.command(name="removeCommand")
    @command_manager()
    async def remove_command(self, ctx: commands.Context, name: str) -> None:
        """Remove a custom command: removeCommand <name>."""
        await self._remove(ctx, name)

    async def _add(self, ctx: commands.Context, name: str, template: str) -> None:
        guild_id = guild_of(ctx).id
        created = await call(command_create, guild_id=guild_id, name=name, template=template, author_id=ctx.author.id)
        self.bot.guild_cache.forget(guild_id)
        await ctx.send(f"Added `{ctx.clean_prefix}{created.name}`.")

    async def _remove(self, ctx: commands.Context, name: str) -> None:
        guild_id = guild_of(ctx).id
        removed = await call(command_delete, guild_id=guild_id, name=name, actor_id=ctx.author.id)
        self.bot.guild_cache.forget(guild_id)
        await ctx.send(f"Removed `{ctx.clean_prefix}{removed}`.")

    @commands.command(name="listCommands")
    @commands.guild_only()
    async def list_commands(self, ctx: commands.Context) -> None:
        """List this server's custom commands."""
        names = await call(command_names_page, guild_id=guild_of(ctx).id)
        await ctx.send(_join_names(names, ctx.clean_prefix, "No custom commands yet."))

    # -- /command -----------------------------------------------------------------------
    @commands.hybrid_group(name="command", fallback="list", invoke_without_command=True)  # type: ignore[arg-type]
    @commands.guild_only()
    async def command_group(self, ctx: commands.Context) -> None:
        """List this server's custom commands."""
        names = await call(command_names_page, guild_id=guild_of(ctx).id)
        await ctx.send(_join_names(names, _prefix(ctx), "No custom commands yet."))

    @command_group.command(name="add")
    @command_manager()
    async def command_add(self, ctx: commands.Context, name: str, *, template: str) -> None:
        """Add a custom command."""
        await self._add(ctx, name, template)

    @command_group.command(name="edit")
    @command_manager()
    async def command_edit(self, ctx: commands.Context, name: str, *, template: str) -> None:
        """Replace a custom command's reply."""
        edited = await call(command_update, guild_id=guild_of(ctx).id, name=name, template=template, editor_id=ctx.author.id)
        self.bot.guild_cache.forget(guild_of(ctx).id)
        await ctx.send(f"Updated `{edited.name}`.")

    @command_group.command(name="remove")
    @command_manager()
    async def command_remove(self, ctx: commands.Context, name: str) -> None:
        """Remove a custom command."""
        await self._remove(ctx, name)

    @command_group.command(name="show")  # type: ignore[arg-type]
    async def command_show(self, ctx: commands.Context, name: str) -> None:
        """Show a custom command's details."""
        text = await call(command_describe, guild_id=guild_of(ctx).id, name=name)
        await ctx.send(defuse_mentions(text) if text else f"There is no command called `{name[:32]}`.")

    @command_group.command(name="raw")  # type: ignore[arg-type]
    async def command_raw(self, ctx: commands.Context, name: str) -> None:
        """Show a custom command's reply template as written."""
        text = await call(command_raw, guild_id=guild_of(ctx).id, name=name, limit=MAX_REPLY - 10)
        await ctx.send(defuse_mentions(text) if text else f"There is no command called `{name[:32]}`.")

    @command_group.command(name="search")  # type: ignore[arg-type]
    async def command_search_(self, ctx: commands.Context, *, query: str) -> None:
        """Find custom commands by name or reply text."""
        names = await call(command_names_page, guild_id=guild_of(ctx).id, query=query)
        await ctx.send(_join_names(names, _prefix(ctx), f"No command matches `{defuse_mentions(query[:50])}`."))

    @command_group.command(name="cooldown")
    @command_manager()
    async def command_cooldown(self, ctx: commands.Context, name: str, seconds: WholeNumber, scope: str = "member") -> None:
        """Set a cooldown (seconds; per member, channel or guild). 0 turns it off."""
        command = await call(
            command_update, guild_id=guild_of(ctx).id, name=name, cooldown_seconds=seconds, cooldown_scope=scope.lower()
        )
        self.bot.guild_cache.forget(guild_of(ctx).id)
        state = f"{seconds}s per {command.cooldown_scope}" if seconds else "off"
        await ctx.send(f"Cooldown of `{command.name}`: {state}.")

    @command_group.command(name="alias")
    @command_manager()
    async def command_alias(self, ctx: commands.Context, name: str, alias: str) -> None:
        """Give a custom command another name."""
        created = await call(command_alias_add, guild_id=guild_of(ctx).id, name=name, alias=alias)
        self.bot.guild_cache.forget(guild_of(ctx).id)
        await ctx.send(f"`{created.name}` now also runs `{created.command.name}`.")

    @command_group.command(name="unalias")
    @command_manager()
    async def command_unalias(self, ctx: commands.Context, alias: str) -> None:
        """Remove an alias."""
        target = await call(command_alias_remove, guild_id=guild_of(ctx).id, alias=alias)
        self.bot.guild_cache.forget(guild_of(ctx).id)
        await ctx.send(f"Removed the alias `{alias.lower()[:32]}` of `{target}`.")

    @command_group.command(name="enable")
    @command_manager()
    async def command_enable(self, ctx: commands.Context, name: str) -> None:
        """Turn a custom command back on."""
        await self._set_enabled(ctx, name, True)

    @command_group.command(name="disable")
    @command_manager()
    async def command_disable(self, ctx: commands.Context, name: str) -> None:
        """Turn a custom command off without deleting it."""
        await self._set_enabled(ctx, name, False)

    async def _set_enabled(self, ctx: commands.Context, name: str, enabled: bool) -> None:
        command = await call(command_update, guild_id=guild_of(ctx).id, name=name, enabled=enabled)
        self.bot.guild_cache.forget(guild_of(ctx).id)
        await ctx.send(f"`{command.name}` is {'on' if enabled else 'off'}.")

    @command_group.command(name="restrict")
    @app_commands.describe(
        name="The custom command (or one of its aliases)",
        rule="allow-role: only members with the role; deny-role: never them; allow-channel: only there",
        role="The role, for allow-role and deny-role",
        channel="The channel, for allow-channel (its threads count too)",
    )
    @app_commands.choices(rule=[app_commands.Choice(name=rule, value=rule) for rule in RULES])
    @command_manager()
    async def command_restrict(
        self,
        ctx: commands.Context,
        name: str,
        rule: str,
        role: discord.Role | None = None,
        channel: discord.abc.GuildChannel | None = None,
    ) -> None:
        """Limit a custom command: allow-role @role, deny-role @role or allow-channel #channel."""
        _nothing_unread(ctx)
        rule = rule.lower()
        if rule not in RULES:
            raise commands.BadArgument(f"After the name comes the rule: {', '.join(f'`{r}`' for r in RULES)}.")
        if rule == "allow-channel":
            if channel is None:
                raise commands.BadArgument("Name the channel: `command restrict <name> allow-channel #channel`.")
            edit = RestrictionEdit.allow_channel(channel.id)
        elif role is None:
            raise commands.BadArgument(f"Name the role: `command restrict <name> {rule} @role`.")
        else:
            edit = RestrictionEdit.allow_role(role.id) if rule == "allow-role" else RestrictionEdit.deny_role(role.id)
        await self._restrict(ctx, name, edit)

    @command_group.command(name="unrestrict")
    @app_commands.describe(
        name="The custom command (or one of its aliases)",
        role="Lift only this role's restriction",
        channel="Lift only this channel's restriction",
    )
    @command_manager()
    async def command_unrestrict(
        self, ctx: commands.Context, name: str, role: discord.Role | None = None, channel: discord.abc.GuildChannel | None = None
    ) -> None:
        """Lift a custom command's limit on a role or channel; with neither, lift every limit."""
        _nothing_unread(ctx)  # a mistyped role must not read as "lift every limit"
        if role is not None and channel is not None:
            raise commands.BadArgument("Lift a role or a channel, one at a time.")
        edit = RestrictionEdit.lift_all()
        if role is not None:
            edit = RestrictionEdit.lift_role(role.id)
        elif channel is not None:
            edit = RestrictionEdit.lift_channel(channel.id)
        await self._restrict(ctx, name, edit)

    async def _restrict(self, ctx: commands.Context, name: str, edit: RestrictionEdit) -> None:
        guild_id = guild_of(ctx).id
        command = await call(command_update, guild_id=guild_id, name=name, restriction_edit=edit)
        self.bot.guild_cache.forget(guild_id)
        lines = restriction_lines(
            allowed_role_ids=command.allowed_role_ids,
            denied_role_ids=command.denied_role_ids,
            allowed_channel_ids=command.allowed_channel_ids,
        )
        shown = "; ".join(lines) if lines else "anyone may use it, anywhere"
        await ctx.send(f"`{command.name}`: {shown}.", allowed_mentions=NO_PINGS)

    @command_group.command(name="run")  # type: ignore[arg-type]
    @app_commands.describe(name="The custom command (or one of its aliases)", arguments="What follows its name in chat")
    @commands.guild_only()
    async def command_run(self, ctx: commands.Context, name: str, *, arguments: str = "") -> None:
        """Use a custom command, as `<prefix><name> arguments` does."""
        guild = guild_of(ctx)
        cached = await self.bot.guild_cache.command(guild.id, name.lower())
        if cached is None or not cached.enabled or cached.compiled is None:
            await ctx.send(f"There is no command called `{name[:32]}`.", ephemeral=True)
            return
        reason = refusal_for(cached, ctx.author, ctx.channel)
        if reason is not None:
            # A slash command needs an answer; an ephemeral one is seen by the caller alone.
            if ctx.interaction is not None or (await self.bot.guild_cache.settings(guild.id)).command_refusal == "reply":
                await ctx.send(refusal_text(name.lower()[:32], reason), ephemeral=True, allowed_mentions=NO_PINGS)
            return
        if cached.cooldown_seconds:
            await call(
                command_cooldown_take,
                command_pk=cached.pk,
                name=cached.name,
                seconds=cached.cooldown_seconds,
                scope=cached.cooldown_scope,
                member_id=ctx.author.id,
                channel_id=ctx.channel.id,
            )
        cookies = None
        if cached.compiled.uses_cookies:
            cookies = await call(cookie_balance, guild_id=guild.id, member_id=ctx.author.id)
        words = tuple(arguments.split())
        context = RenderContext(ctx.author.id, ctx.author.display_name, ctx.channel.id, guild.name, words, cookies)
        text = cached.compiled.render(context)
        self.bot.guild_cache.count_use(cached.pk)
        await ctx.send(text if text.strip() else "(the reply is empty)")

    async def cog_unload(self) -> None:
        await self.bot.guild_cache.flush_usage()


def _nothing_unread(ctx: commands.Context) -> None:
    """Refuse what a chat command left unread: a role or channel argument that no converter took
    (discord.py passes None for an optional one it can't read, and leaves the text)."""
    rest = ctx.view.read_rest().strip() if ctx.interaction is None else ""
    if rest:
        raise commands.BadArgument(f"I found no role or channel `{defuse_mentions(rest[:40])}` in this server.")


def _prefix(ctx: commands.Context) -> str:
    return ctx.clean_prefix if ctx.interaction is None else ""


async def setup(bot) -> None:
    await bot.add_cog(CustomCommands(bot))
