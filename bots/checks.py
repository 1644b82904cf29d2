"""Who may do what: small predicate factories used as decorators on commands."""

from __future__ import annotations

import discord
from discord import app_commands
from discord.ext import commands

from bots.db import call
from timers.services import timer_settings_get


def _has_role(member: discord.abc.User, role_id: int | None) -> bool:
    return bool(role_id) and isinstance(member, discord.Member) and any(r.id == role_id for r in member.roles)


async def may_manage_commands(bot, member: discord.abc.User, guild: discord.Guild | None) -> bool:
    """Manage Server, or the guild's command manager role."""
    if guild is None or not isinstance(member, discord.Member):
        return False
    if member.guild_permissions.manage_guild:
        return True
    return _has_role(member, (await bot.guild_cache.settings(guild.id)).manager_role_id)


async def may_manage_timers(member: discord.abc.User, guild: discord.Guild | None) -> bool:
    """Manage Roles, or the guild's timer admin role."""
    if guild is None or not isinstance(member, discord.Member):
        return False
    if member.guild_permissions.manage_roles:
        return True
    return _has_role(member, (await call(timer_settings_get, guild_id=guild.id)).admin_role_id)


def command_manager():
    """Prefix/hybrid check: the caller may manage custom commands."""

    async def predicate(ctx: commands.Context) -> bool:
        if ctx.guild is None:
            raise commands.NoPrivateMessage("Custom commands are managed inside a server.")
        if await may_manage_commands(ctx.bot, ctx.author, ctx.guild):
            return True
        raise commands.CheckFailure("You need the Manage Server permission or the command manager role to do that.")

    return commands.check(predicate)


def guild_admin():
    """Prefix/hybrid check: Manage Server (for server-wide settings)."""

    async def predicate(ctx: commands.Context) -> bool:
        if ctx.guild is None:
            raise commands.NoPrivateMessage("That only works inside a server.")
        if isinstance(ctx.author, discord.Member) and ctx.author.guild_permissions.manage_guild:
            return True
        raise commands.CheckFailure("You need the Manage Server permission to do that.")

    return commands.check(predicate)


def timer_admin():
    """Slash check: the caller may manage other members' timers."""

    async def predicate(interaction: discord.Interaction) -> bool:
        if await may_manage_timers(interaction.user, interaction.guild):
            return True
        raise app_commands.CheckFailure("You need the Manage Roles permission or the timer admin role to do that.")

    return app_commands.check(predicate)
