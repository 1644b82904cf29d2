"""Server settings from chat: prefix, manager roles and the cookie rules (Manage Server)."""

from __future__ import annotations

from typing import Literal

import discord
from discord import app_commands
from discord.ext import commands

from bots.bot import guild_of
from bots.checks import guild_admin
from bots.converters import WholeNumber
from bots.db import call
from commands.services import guild_settings_update
from guilds.log_selectors import log_settings_get
from guilds.services.log import log_channel_set
from timers.services import timer_settings_get, timer_settings_update

NO_PINGS = discord.AllowedMentions.none()

# The `type: ignore[arg-type]` on hybrid command decorators: discord.py 2.7's hybrid_command
# leaves its Context type variable unsolved under mypy 2, so every such signature is refused.


def _switch(value: str) -> bool:
    lowered = value.strip().lower()
    if lowered in ("on", "yes", "true", "1", "enable", "enabled"):
        return True
    if lowered in ("off", "no", "false", "0", "disable", "disabled"):
        return False
    raise commands.BadArgument("Say `on` or `off`.")


class GuildSettingsCog(commands.Cog, name="Settings"):
    def __init__(self, bot) -> None:
        self.bot = bot

    async def _update(self, ctx: commands.Context, **changes) -> None:
        await call(guild_settings_update, guild_id=guild_of(ctx).id, **changes)
        self.bot.guild_cache.forget(guild_of(ctx).id)

    @commands.hybrid_group(name="settings", fallback="show", invoke_without_command=True)  # type: ignore[arg-type]
    @commands.guild_only()
    async def settings_group(self, ctx: commands.Context) -> None:
        """Show this server's settings."""
        s = await self.bot.guild_cache.settings(guild_of(ctx).id)
        t = await call(timer_settings_get, guild_id=guild_of(ctx).id)
        cap = s.cookie_daily_cap or "no cap"
        lines = [
            f"prefix: `{s.prefix}`",
            f"command manager role: {f'<@&{s.manager_role_id}>' if s.manager_role_id else 'none (Manage Server only)'}",
            f"timer admin role: {f'<@&{t.admin_role_id}>' if t.admin_role_id else 'none (Manage Roles only)'}",
            f"cookies: cooldown {s.cookie_pair_cooldown_seconds}s per pair, {cap} a day, up to {s.cookie_message_cap} per message, "
            f"negative counts {'allowed' if s.cookie_allow_negative else 'not allowed'}, DM {'on' if s.cookie_dm_receiver else 'off'}",
            f"timer warnings: {', '.join(f'{m} min' for m in t.warning_minutes) or 'none'}",
            await _log_channel_line(guild_of(ctx).id),
            f"restricted commands: {'a short reply' if s.command_refusal == 'reply' else 'silent'} when they refuse someone",
        ]
        await ctx.send("\n".join(lines), allowed_mentions=NO_PINGS)

    @settings_group.command(name="prefix")
    @guild_admin()
    async def prefix(self, ctx: commands.Context, prefix: str) -> None:
        """Change the command prefix (default !!)."""
        await self._update(ctx, prefix=prefix)
        await ctx.send(f"Prefix is now `{prefix}`.")

    @settings_group.command(name="manager-role")
    @guild_admin()
    async def manager_role(self, ctx: commands.Context, role: discord.Role | None = None) -> None:
        """Set (or clear) the role that may manage custom commands."""
        await self._update(ctx, manager_role_id=role.id if role else None)
        await ctx.send(f"Command manager role: {role.mention if role else 'none'}.", allowed_mentions=NO_PINGS)

    @settings_group.command(name="timer-admin-role")
    @guild_admin()
    async def timer_admin_role(self, ctx: commands.Context, role: discord.Role | None = None) -> None:
        """Set (or clear) the role that may manage other members' timers."""
        await call(timer_settings_update, guild_id=guild_of(ctx).id, admin_role_id=role.id if role else None)
        await ctx.send(f"Timer admin role: {role.mention if role else 'none'}.", allowed_mentions=NO_PINGS)

    @settings_group.command(name="cookie-cooldown")
    @guild_admin()
    async def cookie_cooldown(self, ctx: commands.Context, seconds: WholeNumber) -> None:
        """Seconds before the same member may change the same member's cookies again (0 = off)."""
        await self._update(ctx, cookie_pair_cooldown_seconds=seconds)
        await ctx.send(f"Cookie cooldown: {seconds}s per pair.")

    @settings_group.command(name="cookie-cap")
    @guild_admin()
    async def cookie_cap(self, ctx: commands.Context, per_day: WholeNumber = 0) -> None:
        """Cookie changes each member may make per 24 hours (0 = no cap)."""
        await self._update(ctx, cookie_daily_cap=per_day or None)
        await ctx.send(f"Daily cookie cap: {per_day or 'none'}.")

    @settings_group.command(name="cookie-message-cap")
    @guild_admin()
    async def cookie_message_cap(self, ctx: commands.Context, mentions: WholeNumber) -> None:
        """How many `@member++` in one message count."""
        await self._update(ctx, cookie_message_cap=mentions)
        await ctx.send(f"Up to {mentions} cookie changes per message.")

    @settings_group.command(name="cookie-negatives")
    @guild_admin()
    async def cookie_negatives(self, ctx: commands.Context, allowed: str) -> None:
        """Allow cookie counts below zero (on/off)."""
        await self._update(ctx, cookie_allow_negative=_switch(allowed))
        await ctx.send(f"Negative cookie counts: {'allowed' if _switch(allowed) else 'not allowed'}.")

    @settings_group.command(name="cookie-dm")
    @guild_admin()
    async def cookie_dm(self, ctx: commands.Context, enabled: str) -> None:
        """DM members when they get a cookie (on/off)."""
        await self._update(ctx, cookie_dm_receiver=_switch(enabled))
        await ctx.send(f"Cookie DMs: {'on' if _switch(enabled) else 'off'}.")

    @settings_group.command(name="command-refusal")
    @app_commands.choices(mode=[app_commands.Choice(name=mode, value=mode) for mode in ("reply", "silent")])
    @guild_admin()
    async def command_refusal(self, ctx: commands.Context, mode: str) -> None:
        """What a member sees when a restricted custom command refuses them: a short reply, or nothing."""
        mode = mode.lower()
        await self._update(ctx, command_refusal=mode)
        shown = "a short reply says why" if mode == "reply" else "nothing is said"
        await ctx.send(f"When a restricted command refuses someone, {shown}.")

    @settings_group.command(name="log-channel")
    @app_commands.describe(channel="Where the bot posts what it did and who asked", turn="off: stop posting the log")
    @guild_admin()
    async def log_channel(
        self, ctx: commands.Context, channel: discord.TextChannel | None = None, turn: Literal["off"] | None = None
    ) -> None:
        """Post the activity log (timers, cookie resets, command changes) in a channel, or `off`."""
        guild = guild_of(ctx)
        if channel is None and turn is None:
            await ctx.send(await _log_channel_line(guild.id), allowed_mentions=NO_PINGS)
            return
        if channel is None:
            await call(log_channel_set, guild_id=guild.id, channel_id=None, actor_id=ctx.author.id)
            await ctx.send("The activity log is no longer posted; it is still kept on the dashboard.")
            return
        missing = _log_permissions_missing(guild, channel)
        if missing:
            await ctx.send(f"I can't post the log in {channel.mention}: I need {missing} there.", allowed_mentions=NO_PINGS)
            return
        await call(log_channel_set, guild_id=guild.id, channel_id=channel.id, actor_id=ctx.author.id)
        await ctx.send(f"The activity log goes to {channel.mention} from now on.", allowed_mentions=NO_PINGS)


LOG_PERMISSIONS = (("view_channel", "View Channel"), ("send_messages", "Send Messages"), ("embed_links", "Embed Links"))
LOG_ERRORS = {"forbidden": "I may not post there", "gone": "the channel is gone"}


def _log_permissions_missing(guild: discord.Guild, channel: discord.TextChannel) -> str:
    """The permissions the bot lacks to post the log in ``channel``, as words ("" when none)."""
    me = guild.me
    if me is None:
        return "to see my own permissions (try again in a minute)"
    allowed = channel.permissions_for(me)
    return ", ".join(label for name, label in LOG_PERMISSIONS if not getattr(allowed, name))


async def _log_channel_line(guild_id: int) -> str:
    log = await call(log_settings_get, guild_id=guild_id)
    if log is None or log.channel_id is None:
        return "log channel: off (the activity log is kept on the dashboard)"
    problem = f" ⚠️ the last post failed: {LOG_ERRORS.get(log.post_error, log.post_error)}" if log.post_error else ""
    return f"log channel: <#{log.channel_id}>{problem}"


async def setup(bot) -> None:
    await bot.add_cog(GuildSettingsCog(bot))
