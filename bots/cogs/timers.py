"""/timer: timed roles from chat. Services hold the rules; this cog checks Discord-side facts
(the caller's and the bot's permissions, the role hierarchy) and changes the role."""

from __future__ import annotations

import logging
from datetime import timedelta

import discord
from discord import app_commands
from discord.ext import commands

from bots.checks import may_manage_timers, timer_admin
from bots.db import call
from bots.role_changes import role_add, role_remove
from bots.timer_notices import timer_notice_send
from config.numbers import ASCII_DIGITS_HELP, parse_int
from timers.durations import format_duration, parse_duration
from timers.errors import TimerError
from timers.models import ExpiryOutcome, TimedRole, TimerEventKind, TimerState
from timers.selectors import allowed_roles, reports_shown, timers_shown
from timers.services import (
    allowed_role_add,
    allowed_role_remove,
    report_remove,
    report_set,
    timer_add,
    timer_clear,
    timer_pause,
    timer_pause_all,
    timer_remove,
    timer_resume,
    timer_resume_all,
    timer_set,
    timer_settings_get,
    timer_warnings_set,
)
from timers.services.sweeps import sweep_claim_expiries, sweep_record_expiries

logger = logging.getLogger(__name__)
NO_PINGS = discord.AllowedMentions.none()
MAX_SHOWN = 20


def guild_of(interaction: discord.Interaction) -> discord.Guild:
    """The guild a /timer command came from (the group is guild-only, so there always is one)."""
    if interaction.guild is None:
        raise TimerError("Timers work in a server, not in direct messages.")
    return interaction.guild


def bot_may_grant(guild: discord.Guild, role: discord.Role) -> None:
    """Raise TimerError unless the bot can add and remove ``role`` in ``guild``."""
    me = guild.me
    if me is None or not me.guild_permissions.manage_roles:
        raise TimerError("I need the Manage Roles permission to manage timed roles.")
    if role.is_default() or role.managed:
        raise TimerError(f"{role.mention} is managed by Discord or an integration; I can't grant it.")
    if role >= me.top_role:
        raise TimerError(f"{role.mention} is above my highest role; move my role above it first.")


def timer_embed(title: str, timer: TimedRole, colour: discord.Colour | None = None) -> discord.Embed:
    embed = discord.Embed(title=title, colour=colour or discord.Colour.blurple())
    who = f"<@{timer.member_id}> · <@&{timer.role_id}>"
    if timer.state == TimerState.PAUSED:
        until = f" until <t:{int(timer.pause_until.timestamp())}:f>" if timer.pause_until else ""
        embed.description = f"{who}\n⏸️ paused with **{format_duration(timer.frozen_remaining)}** left{until}"
    elif timer.state == TimerState.ACTIVE:
        ts = int(timer.ends_at.timestamp())
        embed.description = f"{who}\n⏳ ends <t:{ts}:R> (<t:{ts}:f>)"
    else:
        embed.description = f"{who}\nended ({timer.get_state_display()})"
    if timer.away_since is not None and timer.state != TimerState.EXPIRED:
        embed.description += (
            f"\n🚪 the member left <t:{int(timer.away_since.timestamp())}:R>; the role comes back if they rejoin in time"
        )
    return embed


def _duration(text: str | None) -> timedelta | None:
    return parse_duration(text) if text else None


@app_commands.guild_only()
class Timers(commands.GroupCog, group_name="timer", group_description="Timed roles"):
    roles = app_commands.Group(name="roles", description="The roles timers may grant")
    report = app_commands.Group(name="report", description="Scheduled role-status posts")

    def __init__(self, bot) -> None:
        self.bot = bot
        super().__init__()

    def _reason(self, interaction: discord.Interaction, what: str) -> str:
        return f"Guildhall timer: {what} by {interaction.user} ({interaction.user.id})"

    async def _expire_now(self, interaction: discord.Interaction, timer: TimedRole) -> str | None:
        """Expire a timer left with no time as the engine would: claim, remove, record; the outcome.

        None when the engine claimed it first (it is removing the role right now).
        """
        owner = f"bot:{interaction.id}"[:32]
        if not await call(sweep_claim_expiries, owner=owner, timer_ids=[timer.pk], limit=1):
            return None
        change = await role_remove(
            self.bot.http, timer.guild_id, timer.member_id, timer.role_id, self._reason(interaction, "time removed")
        )
        await call(sweep_record_expiries, outcomes=[(timer.pk, change.expiry_outcome, change.detail)], owner=owner)
        return change.expiry_outcome

    @app_commands.command(name="set", description="Give a member a role for a duration")
    @app_commands.describe(user="Who gets the role", time="e.g. 90m, 24h, 1d 12h", role="The role", channel="Where warnings go")
    @timer_admin()
    async def set_(
        self,
        interaction: discord.Interaction,
        user: discord.Member,
        time: str,
        role: discord.Role,
        channel: discord.TextChannel | None = None,
    ) -> None:
        await self._grant(interaction, timer_set, "Timer set", user, time, role, channel)

    @app_commands.command(name="add", description="Add time to a member's timer (starts one if needed)")
    @timer_admin()
    async def add(
        self,
        interaction: discord.Interaction,
        user: discord.Member,
        time: str,
        role: discord.Role,
        channel: discord.TextChannel | None = None,
    ) -> None:
        await self._grant(interaction, timer_add, "Time added", user, time, role, channel)

    async def _grant(self, interaction, service, title, user, time, role, channel) -> None:
        duration = parse_duration(time)
        if user.bot:
            raise TimerError("Bots can't hold timed roles.")
        bot_may_grant(guild_of(interaction), role)
        await interaction.response.defer()
        change = await call(
            service,
            guild_id=guild_of(interaction).id,
            member_id=user.id,
            role_id=role.id,
            duration=duration,
            actor_id=interaction.user.id,
            channel_id=(channel or interaction.channel).id,
        )
        granted = await role_add(
            self.bot.http, guild_of(interaction).id, user.id, role.id, self._reason(interaction, f"{title.lower()} ({time})")
        )
        if not granted.done:
            if change.created:  # nothing was promised yet: take the new timer back
                await call(timer_clear, guild_id=guild_of(interaction).id, member_id=user.id, role_id=role.id, actor_id=None)
            raise TimerError(f"Discord refused to give {role.mention} to {user.mention}: {granted.text}.")
        await interaction.followup.send(embed=timer_embed(title, change.timer), allowed_mentions=NO_PINGS)
        kind = TimerEventKind.ADD if service is timer_add and not change.created else TimerEventKind.SET
        await timer_notice_send(self.bot.http, change.timer, kind)

    @app_commands.command(name="remove", description="Take time off a member's timer")
    @timer_admin()
    async def remove(self, interaction: discord.Interaction, user: discord.Member, time: str, role: discord.Role) -> None:
        duration = parse_duration(time)
        await interaction.response.defer()
        change = await call(
            timer_remove,
            guild_id=guild_of(interaction).id,
            member_id=user.id,
            role_id=role.id,
            duration=duration,
            actor_id=interaction.user.id,
        )
        if change.due_now:
            outcome = await self._expire_now(interaction, change.timer)
            if outcome is None:
                text = f"No time left: {role.mention} is being removed from {user.mention}."
            elif outcome == ExpiryOutcome.REMOVED:
                text = f"No time left: {role.mention} removed from {user.mention}."
            else:
                text = f"No time left; removing the role: {ExpiryOutcome(outcome).label}."
            await interaction.followup.send(text, allowed_mentions=NO_PINGS)
            return
        await interaction.followup.send(embed=timer_embed("Time removed", change.timer), allowed_mentions=NO_PINGS)

    @app_commands.command(name="clear", description="End a member's timer now and take the role")
    @timer_admin()
    async def clear(self, interaction: discord.Interaction, user: discord.Member, role: discord.Role) -> None:
        await interaction.response.defer()
        await call(
            timer_clear, guild_id=guild_of(interaction).id, member_id=user.id, role_id=role.id, actor_id=interaction.user.id
        )
        taken = await role_remove(self.bot.http, guild_of(interaction).id, user.id, role.id, self._reason(interaction, "cleared"))
        note = "" if taken.done else f" (removing the role: {ExpiryOutcome(taken.refusal).label})"
        await interaction.followup.send(
            f"Cleared the timer for {role.mention} on {user.mention}{note}.", allowed_mentions=NO_PINGS
        )

    @app_commands.command(name="pause", description="Freeze a member's timer, optionally for a while")
    @timer_admin()
    async def pause(
        self, interaction: discord.Interaction, user: discord.Member, role: discord.Role, time: str | None = None
    ) -> None:
        change = await call(
            timer_pause,
            guild_id=guild_of(interaction).id,
            member_id=user.id,
            role_id=role.id,
            actor_id=interaction.user.id,
            duration=_duration(time),
        )
        await interaction.response.send_message(embed=timer_embed("Timer paused", change.timer), allowed_mentions=NO_PINGS)

    @app_commands.command(name="resume", description="Start a paused timer again")
    @timer_admin()
    async def resume(self, interaction: discord.Interaction, user: discord.Member, role: discord.Role) -> None:
        change = await call(
            timer_resume, guild_id=guild_of(interaction).id, member_id=user.id, role_id=role.id, actor_id=interaction.user.id
        )
        await interaction.response.send_message(embed=timer_embed("Timer resumed", change.timer), allowed_mentions=NO_PINGS)

    @app_commands.command(name="pause-all", description="Pause every running timer for a role")
    @timer_admin()
    async def pause_all(self, interaction: discord.Interaction, role: discord.Role, time: str | None = None) -> None:
        duration = _duration(time)
        await interaction.response.defer()
        count = await call(
            timer_pause_all, guild_id=guild_of(interaction).id, role_id=role.id, actor_id=interaction.user.id, duration=duration
        )
        until = f" for {format_duration(duration)}" if duration else ""
        await interaction.followup.send(f"Paused {count} timer(s) for {role.mention}{until}.", allowed_mentions=NO_PINGS)

    @app_commands.command(name="resume-all", description="Resume the timers a pause-all froze")
    @timer_admin()
    async def resume_all(self, interaction: discord.Interaction, role: discord.Role) -> None:
        await interaction.response.defer()
        count = await call(timer_resume_all, guild_id=guild_of(interaction).id, role_id=role.id, actor_id=interaction.user.id)
        await interaction.followup.send(f"Resumed {count} timer(s) for {role.mention}.", allowed_mentions=NO_PINGS)

    @app_commands.command(name="show", description="Show running timers (yours by default)")
    async def show(
        self, interaction: discord.Interaction, user: discord.User | None = None, role: discord.Role | None = None
    ) -> None:
        # A user, not only a member: an admin may look at the timers of someone who left.
        target = user or interaction.user
        if target.id != interaction.user.id and not await may_manage_timers(interaction.user, guild_of(interaction)):
            raise TimerError("You can see your own timers; other members' need Manage Roles or the timer admin role.")
        found = await call(
            timers_shown,
            guild_id=guild_of(interaction).id,
            member_id=target.id,
            role_id=role.id if role else None,
            limit=MAX_SHOWN,
        )
        if not found:
            await interaction.response.send_message(f"<@{target.id}> has no running timers.", allowed_mentions=NO_PINGS)
            return
        embeds = [timer_embed("Timer", timer) for timer in found[:10]]
        await interaction.response.send_message(embeds=embeds, allowed_mentions=NO_PINGS)

    # -- configuration --------------------------------------------------------------------
    @roles.command(name="add", description="Allow timers to grant a role")
    @timer_admin()
    async def roles_add(self, interaction: discord.Interaction, role: discord.Role) -> None:
        bot_may_grant(guild_of(interaction), role)
        await call(allowed_role_add, guild_id=guild_of(interaction).id, role_id=role.id, actor_id=interaction.user.id)
        await interaction.response.send_message(f"Timers may now grant {role.mention}.", allowed_mentions=NO_PINGS)

    @roles.command(name="remove", description="Stop timers granting a role")
    @timer_admin()
    async def roles_remove(self, interaction: discord.Interaction, role: discord.Role) -> None:
        await call(allowed_role_remove, guild_id=guild_of(interaction).id, role_id=role.id)
        await interaction.response.send_message(f"{role.mention} is off the list.", allowed_mentions=NO_PINGS)

    @roles.command(name="list", description="The roles timers may grant")
    async def roles_list(self, interaction: discord.Interaction) -> None:
        listed = await call(allowed_roles, guild_id=guild_of(interaction).id)
        text = ", ".join(f"<@&{r}>" for r in listed) if listed else "Any role below mine (no list set)."
        await interaction.response.send_message(text, allowed_mentions=NO_PINGS)

    @app_commands.command(name="warnings", description="Show or set the warning times, e.g. 60,10,1 (minutes)")
    async def warnings(self, interaction: discord.Interaction, minutes: str | None = None) -> None:
        if minutes is None:
            current = (await call(timer_settings_get, guild_id=guild_of(interaction).id)).warning_minutes
            shown = ", ".join(f"{m} min" for m in current) or "none"
            await interaction.response.send_message(f"Warnings go out {shown} before a timer ends.")
            return
        if not await may_manage_timers(interaction.user, guild_of(interaction)):
            raise TimerError("You need Manage Roles or the timer admin role to change the warnings.")
        values = [parse_int(part) for part in minutes.replace(",", " ").split()]
        if any(value is None for value in values):
            raise TimerError(f"Give warning times as whole minutes, like `60, 10, 1`. {ASCII_DIGITS_HELP}")
        saved = await call(timer_warnings_set, guild_id=guild_of(interaction).id, minutes=values)
        shown = ", ".join(f"{m} min" for m in saved) or "none"
        await interaction.response.send_message(f"Warnings now go out {shown} before a timer ends.")

    @report.command(name="set", description="Post who holds a role, every so often")
    @timer_admin()
    async def report_set_(
        self, interaction: discord.Interaction, role: discord.Role, channel: discord.TextChannel, every: str = "1d"
    ) -> None:
        interval = parse_duration(every)
        saved = await call(
            report_set,
            guild_id=guild_of(interaction).id,
            role_id=role.id,
            channel_id=channel.id,
            interval_minutes=int(interval.total_seconds() // 60),
            actor_id=interaction.user.id,
        )
        await interaction.response.send_message(
            f"Report #{saved.pk}: {role.mention} in {channel.mention} every {format_duration(interval)}, "
            f"next <t:{int(saved.next_run_at.timestamp())}:R>.",
            allowed_mentions=NO_PINGS,
        )

    @report.command(name="list", description="The scheduled role reports")
    async def report_list(self, interaction: discord.Interaction) -> None:
        found = await call(reports_shown, guild_id=guild_of(interaction).id, limit=25)
        lines = [
            f"#{r.pk}: <@&{r.role_id}> in <#{r.channel_id}> every {format_duration(timedelta(minutes=r.interval_minutes))}"
            for r in found
        ]
        await interaction.response.send_message("\n".join(lines) or "No reports scheduled.", allowed_mentions=NO_PINGS)

    @report.command(name="remove", description="Stop a scheduled role report")
    @timer_admin()
    async def report_remove_(self, interaction: discord.Interaction, report_id: int) -> None:
        await call(report_remove, guild_id=guild_of(interaction).id, report_id=report_id)
        await interaction.response.send_message(f"Report #{report_id} removed.")


async def setup(bot) -> None:
    await bot.add_cog(Timers(bot))
