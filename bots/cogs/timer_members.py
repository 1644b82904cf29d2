"""Timed roles that survive: members leaving and rejoining, reconciliation, and /timer settings.

The listeners hand gateway events to ``timers.services.membership`` (idempotent, so a
replayed or duplicated event changes nothing) and give roles back through the one role
client; reconciliation runs in ``bots.reconcile``. ``/timer settings`` is a subgroup of
the ``/timer`` group (and ``<prefix>timer settings …`` in chat).
"""

from __future__ import annotations

import asyncio
import logging
import os

import discord
from discord import app_commands
from discord.ext import commands
from django.conf import settings

from bots.checks import may_manage_timers, timer_admin
from bots.db import call
from bots.reconcile import Reconciler
from bots.role_changes import role_add
from timers.models import TimerSettings
from timers.services import timer_settings_get
from timers.services.membership import timer_member_left, timer_member_rejoined, timer_membership_settings_set

logger = logging.getLogger(__name__)
NO_PINGS = discord.AllowedMentions.none()
REJOIN_REASON = "Guildhall timer: role given back on rejoin (the timer is still running)"
LEAVE_WORDS = {"run": "keep running while the member is away", "pause": "pause while the member is away"}
MISSING_WORDS = {"restore": "the role is given back", "pause": "the timer pauses until the role is back"}


def settings_text(t: TimerSettings) -> str:
    """The timer settings as a chat answer."""
    if t.notice == "channel":
        notice = f"in <#{t.notice_channel_id}>"
    else:
        notice = {"dm": "by DM", "off": "off"}.get(t.notice, t.notice)
    return "\n".join(
        [
            f"timer admin role: {f'<@&{t.admin_role_id}>' if t.admin_role_id else 'none (Manage Roles only)'}",
            f"warnings: {', '.join(f'{m} min' for m in t.warning_minutes) or 'none'}",
            f"on leave (`on-leave`): timers {t.on_leave} — they {LEAVE_WORDS.get(t.on_leave, t.on_leave)}",
            f"role taken away by hand (`on-role-missing`): {t.on_role_missing} — {MISSING_WORDS.get(t.on_role_missing, '')}",
            f"grant and extend notices (`notice`): {notice}",
        ]
    )


async def _change(guild_id: int, **changes) -> str:
    saved = await call(timer_membership_settings_set, guild_id=guild_id, **changes)
    return "Saved.\n" + settings_text(saved)


def _notice_args(mode: str, channel_id: int | None) -> dict:
    return {"notice": mode, "notice_channel_id": channel_id if mode.strip().lower() == "channel" else None}


class TimerSettingsGroup(app_commands.Group):
    """``/timer settings …``: attached to the /timer group when the cog loads."""

    def __init__(self) -> None:
        super().__init__(name="settings", description="What timers do when members leave or lose the role; notices")

    @app_commands.command(name="show", description="Show the timer settings")
    async def show(self, interaction: discord.Interaction) -> None:
        assert interaction.guild is not None  # the /timer group is guild-only
        saved = await call(timer_settings_get, guild_id=interaction.guild.id)
        await interaction.response.send_message(settings_text(saved), allowed_mentions=NO_PINGS)

    @app_commands.command(name="on-leave", description="When a member leaves: timers run on or pause (run|pause)")
    @app_commands.describe(mode="run or pause")
    @timer_admin()
    async def on_leave(self, interaction: discord.Interaction, mode: str) -> None:
        assert interaction.guild is not None
        text = await _change(interaction.guild.id, on_leave=mode)
        await interaction.response.send_message(text, allowed_mentions=NO_PINGS)

    @app_commands.command(name="on-role-missing", description="A timed role taken away by hand: restore|pause")
    @app_commands.describe(mode="restore or pause")
    @timer_admin()
    async def on_role_missing(self, interaction: discord.Interaction, mode: str) -> None:
        assert interaction.guild is not None
        text = await _change(interaction.guild.id, on_role_missing=mode)
        await interaction.response.send_message(text, allowed_mentions=NO_PINGS)

    @app_commands.command(name="notice", description="Tell members when a timed role is granted or extended")
    @app_commands.describe(mode="off, channel or dm", channel="Where notices go (with mode channel)")
    @timer_admin()
    async def notice(self, interaction: discord.Interaction, mode: str, channel: discord.TextChannel | None = None) -> None:
        assert interaction.guild is not None
        text = await _change(interaction.guild.id, **_notice_args(mode, channel.id if channel else None))
        await interaction.response.send_message(text, allowed_mentions=NO_PINGS)


# -- prefix forms: <prefix>timer settings [on-leave|on-role-missing|notice] ------------------
async def _prefix_timer_admin(ctx: commands.Context) -> bool:
    if ctx.guild is None:
        raise commands.NoPrivateMessage("Timers work in a server, not in direct messages.")
    if await may_manage_timers(ctx.author, ctx.guild):
        return True
    raise commands.CheckFailure("You need the Manage Roles permission or the timer admin role to do that.")


async def _timer_root(ctx: commands.Context) -> None:
    """Timed roles: the commands are /timer …; in chat, `timer settings`."""
    await ctx.send("Timed roles are managed with `/timer`; in chat: `timer settings`.")


async def _settings_show(ctx: commands.Context) -> None:
    """Show the timer settings."""
    if ctx.guild is None:
        raise commands.NoPrivateMessage("Timers work in a server, not in direct messages.")
    await ctx.send(settings_text(await call(timer_settings_get, guild_id=ctx.guild.id)), allowed_mentions=NO_PINGS)


async def _settings_on_leave(ctx: commands.Context, mode: str) -> None:
    """When a member leaves: their timers run on (run) or pause until they are back (pause)."""
    assert ctx.guild is not None
    await ctx.send(await _change(ctx.guild.id, on_leave=mode), allowed_mentions=NO_PINGS)


async def _settings_on_role_missing(ctx: commands.Context, mode: str) -> None:
    """A timed role taken away by hand: give it back (restore) or pause the timer (pause)."""
    assert ctx.guild is not None
    await ctx.send(await _change(ctx.guild.id, on_role_missing=mode), allowed_mentions=NO_PINGS)


async def _settings_notice(ctx: commands.Context, mode: str, channel: discord.TextChannel | None = None) -> None:
    """Grant and extend notices: off, channel #channel, or dm."""
    assert ctx.guild is not None
    await ctx.send(await _change(ctx.guild.id, **_notice_args(mode, channel.id if channel else None)), allowed_mentions=NO_PINGS)


def _prefix_settings() -> commands.Group:
    group: commands.Group = commands.Group(_settings_show, name="settings", invoke_without_command=True)
    for callback, name in (
        (_settings_on_leave, "on-leave"),
        (_settings_on_role_missing, "on-role-missing"),
        (_settings_notice, "notice"),
    ):
        group.add_command(commands.Command(callback, name=name, checks=[_prefix_timer_admin]))
    return group


class TimerMembers(commands.Cog):
    def __init__(self, bot) -> None:
        self.bot = bot
        self.reconciler = Reconciler(bot, owner=f"bot:{os.getpid()}")
        self._slash = TimerSettingsGroup()
        self._prefix = _prefix_settings()
        self._own_root: commands.Group | None = None
        self._tasks: list[asyncio.Task] = []

    async def cog_load(self) -> None:
        group = self.bot.tree.get_command("timer")
        if not isinstance(group, app_commands.Group):
            raise RuntimeError("bots.cogs.timer_members loads after bots.cogs.timers")
        group.add_command(self._slash)
        root = self.bot.get_command("timer")
        if not isinstance(root, commands.Group):  # another cog may own the prefix `timer` group
            root = self._own_root = commands.Group(_timer_root, name="timer", invoke_without_command=True)
            self.bot.add_command(root)
        root.add_command(self._prefix)
        self._tasks = [
            asyncio.create_task(self.reconciler.run(), name="timer-reconcile"),
            asyncio.create_task(self._every_few_hours(), name="timer-reconcile-clock"),
        ]

    async def cog_unload(self) -> None:
        for task in self._tasks:
            task.cancel()
        group = self.bot.tree.get_command("timer")
        if isinstance(group, app_commands.Group):
            group.remove_command("settings")
        if self._own_root is not None:
            self.bot.remove_command("timer")

    async def _every_few_hours(self) -> None:
        # Offer every guild of this process now and then; the last-reconciled records decide which are due.
        period = max(60.0, min(600.0, settings.RECONCILE_HOURS * 3600 / 4))
        await self.bot.wait_until_ready()
        while True:
            await asyncio.sleep(period)
            self.reconciler.offer([g.id for g in self.bot.guilds])

    @commands.Cog.listener()
    async def on_shard_ready(self, shard_id: int) -> None:
        self.reconciler.offer([g.id for g in self.bot.guilds if g.shard_id == shard_id])

    @commands.Cog.listener()
    async def on_raw_member_remove(self, payload: discord.RawMemberRemoveEvent) -> None:
        if payload.user.bot:
            return
        marked = await call(timer_member_left, guild_id=payload.guild_id, member_id=payload.user.id)
        if marked:
            logger.info("member %s left guild %s: %d live timer(s) kept", payload.user.id, payload.guild_id, marked)

    @commands.Cog.listener()
    async def on_member_join(self, member: discord.Member) -> None:
        if member.bot:
            return
        grants = await call(
            timer_member_rejoined,
            guild_id=member.guild.id,
            member_id=member.id,
            joined_at=member.joined_at,
            held_role_ids={r.id for r in member.roles},
        )
        for timer in grants:
            change = await role_add(self.bot.http, timer.guild_id, timer.member_id, timer.role_id, REJOIN_REASON)
            if not change.done:  # reconciliation tries again
                logger.warning("giving timer %s's role back on rejoin failed: %s", timer.pk, change.detail)


async def setup(bot) -> None:
    await bot.add_cog(TimerMembers(bot))
