"""/timer bulk-add, bulk-clear and bulk-cancel (and their prefix forms): the bot checks and answers, the worker works.

The bot checks what only Discord knows (the caller's permission, its own Manage Roles and
the role hierarchy), creates the job (timers.services.bulk: the allowed-role list, the
duration, one job at a time per server) and answers at once; that answer is the progress
message, which the worker (bots.bulk) edits as it goes. The commands join the ``/timer``
group of bots.cogs.timers and the prefix ``timer`` group, whichever cog made it.
"""

from __future__ import annotations

import logging
from typing import Any

import discord
from discord import app_commands
from discord.ext import commands

from bots.bulk_progress import CANCEL_BUTTON, cancel_button, progress_text
from bots.checks import may_manage_timers, timer_admin
from bots.cogs.timers import bot_may_grant
from bots.db import call
from config.numbers import ASCII_DIGITS_HELP, parse_int
from timers.durations import parse_duration
from timers.errors import TimerError
from timers.models import BulkJob, BulkKind
from timers.services.bulk import bulk_job_cancel, bulk_job_create, bulk_job_progress_message

logger = logging.getLogger(__name__)
NO_PINGS = discord.AllowedMentions.none()
ADMIN_ONLY = "You need the Manage Roles permission or the timer admin role to do that."


def _guild(where: discord.Interaction | commands.Context) -> discord.Guild:
    if where.guild is None:
        raise TimerError("Bulk changes work in a server, not in direct messages.")
    return where.guild


def _check_add(guild: discord.Guild, role: discord.Role, holders_of: discord.Role | None) -> None:
    bot_may_grant(guild, role)
    if holders_of is not None and holders_of.id != role.id and holders_of.managed and holders_of.is_bot_managed():
        raise TimerError(f"{holders_of.mention} belongs to a bot; choose a role that members hold.")


async def _start_add(
    guild: discord.Guild, actor: discord.abc.User, role: discord.Role, time: str, holders_of, channel_id
) -> BulkJob:
    duration = parse_duration(time)
    _check_add(guild, role, holders_of)
    return await call(
        bulk_job_create,
        guild_id=guild.id,
        kind=BulkKind.ADD,
        role_id=role.id,
        seconds=int(duration.total_seconds()),
        holders_of_role_id=holders_of.id if holders_of else None,
        actor_id=actor.id,
        channel_id=channel_id,
    )


async def _start_clear(guild: discord.Guild, actor: discord.abc.User, role: discord.Role, channel_id) -> BulkJob:
    bot_may_grant(guild, role)
    return await call(
        bulk_job_create, guild_id=guild.id, kind=BulkKind.CLEAR, role_id=role.id, actor_id=actor.id, channel_id=channel_id
    )


def _cancelled_text(job: BulkJob) -> str:
    if job.state == "cancelled":
        return f"Bulk job #{job.pk} cancelled."
    return f"Cancelling bulk job #{job.pk}: it stops after the member it is on."


class _CancelView(discord.ui.View):
    """The progress message's first Cancel button (the worker's edits carry it on; clicks reach ``on_interaction``)."""

    def __init__(self, job: BulkJob) -> None:
        super().__init__(timeout=None)
        for row in cancel_button(job):
            for button in row["components"]:
                self.add_item(discord.ui.Button(style=discord.ButtonStyle.danger, label="Cancel", custom_id=button["custom_id"]))


async def _answer(interaction: discord.Interaction, job: BulkJob) -> None:
    """Answer with the progress message and tell the job where it is."""
    sent = await interaction.response.send_message(progress_text(job), allowed_mentions=NO_PINGS, view=_CancelView(job))
    message = sent.resource
    if isinstance(message, discord.InteractionMessage) and interaction.channel_id is not None:
        await call(bulk_job_progress_message, job_id=job.pk, channel_id=interaction.channel_id, message_id=message.id)


# --- slash -------------------------------------------------------------------------------------
@app_commands.command(name="bulk-add", description="Give a role for a duration to every holder of a role")
@app_commands.describe(
    role="The role to give", time="e.g. 30d, 24h, 1d 12h", holders_of="Who gets it (default: who holds the role now)"
)
@app_commands.rename(holders_of="holders-of")
@timer_admin()
async def slash_bulk_add(
    interaction: discord.Interaction, role: discord.Role, time: str, holders_of: discord.Role | None = None
) -> None:
    job = await _start_add(_guild(interaction), interaction.user, role, time, holders_of, interaction.channel_id)
    await _answer(interaction, job)


@app_commands.command(name="bulk-clear", description="End every running timer of a role and take the role")
@timer_admin()
async def slash_bulk_clear(interaction: discord.Interaction, role: discord.Role) -> None:
    job = await _start_clear(_guild(interaction), interaction.user, role, interaction.channel_id)
    await _answer(interaction, job)


@app_commands.command(name="bulk-cancel", description="Stop the bulk change under way")
@app_commands.describe(job="The job number (default: the one under way)")
@timer_admin()
async def slash_bulk_cancel(interaction: discord.Interaction, job: int | None = None) -> None:
    found = await call(bulk_job_cancel, guild_id=_guild(interaction).id, job_id=job, actor_id=interaction.user.id)
    await interaction.response.send_message(_cancelled_text(found), allowed_mentions=NO_PINGS)


# --- prefix ------------------------------------------------------------------------------------
async def _prefix_timer_admin(ctx: commands.Context) -> bool:
    if ctx.guild is None:
        raise commands.NoPrivateMessage("Bulk changes work in a server, not in direct messages.")
    if await may_manage_timers(ctx.author, ctx.guild):
        return True
    raise commands.CheckFailure(ADMIN_ONLY)


async def _reply(ctx: commands.Context, job: BulkJob) -> None:
    message = await ctx.reply(progress_text(job), allowed_mentions=NO_PINGS, mention_author=False, view=_CancelView(job))
    await call(bulk_job_progress_message, job_id=job.pk, channel_id=message.channel.id, message_id=message.id)


async def prefix_bulk_add(ctx: commands.Context, role: discord.Role, time: str, holders_of: discord.Role | None = None) -> None:
    """Give ROLE for TIME to every holder of HOLDERS_OF (default: who holds ROLE now); quote a time with spaces."""
    await _reply(ctx, await _start_add(_guild(ctx), ctx.author, role, time, holders_of, ctx.channel.id))


async def prefix_bulk_clear(ctx: commands.Context, role: discord.Role) -> None:
    """End every running timer of ROLE and take the role."""
    await _reply(ctx, await _start_clear(_guild(ctx), ctx.author, role, ctx.channel.id))


async def prefix_bulk_cancel(ctx: commands.Context, job: str | None = None) -> None:
    """Stop the bulk change under way (or job number JOB)."""
    job_id = parse_int(job.lstrip("#")) if job is not None else None
    if job is not None and (job_id is None or job_id < 1):
        raise TimerError(f"Give the job's number, like `timer bulk-cancel 7`. {ASCII_DIGITS_HELP}")
    found = await call(bulk_job_cancel, guild_id=_guild(ctx).id, job_id=job_id, actor_id=ctx.author.id)
    await ctx.send(_cancelled_text(found), allowed_mentions=NO_PINGS)


async def _timer_root(ctx: commands.Context) -> None:
    """Timed roles (see /timer for every subcommand)."""
    await ctx.send("Use a subcommand, like `timer bulk-add @role 30d` (or see `/timer`).")


SLASH: tuple[app_commands.Command, ...] = (slash_bulk_add, slash_bulk_clear, slash_bulk_cancel)
PREFIX = ((prefix_bulk_add, "bulk-add"), (prefix_bulk_clear, "bulk-clear"), (prefix_bulk_cancel, "bulk-cancel"))


class TimerBulk(commands.Cog):
    def __init__(self, bot) -> None:
        self.bot = bot
        self._own_root: commands.Group | None = None

    async def cog_load(self) -> None:
        group = self.bot.tree.get_command("timer")
        if not isinstance(group, app_commands.Group):
            raise RuntimeError("bots.cogs.timer_bulk loads after bots.cogs.timers")
        for command in SLASH:
            group.add_command(command)
        root = self.bot.get_command("timer")
        if not isinstance(root, commands.Group):  # another cog may own the prefix `timer` group
            root = self._own_root = commands.Group(_timer_root, name="timer", invoke_without_command=True)
            self.bot.add_command(root)
        for callback, name in PREFIX:
            root.add_command(commands.Command(callback, name=name, checks=[_prefix_timer_admin]))

    @commands.Cog.listener()
    async def on_interaction(self, interaction: discord.Interaction) -> None:
        """A click on a progress message's Cancel button: the same check and service as /timer bulk-cancel."""
        if interaction.type != discord.InteractionType.component:
            return
        data: dict[str, Any] = dict(interaction.data or {})
        custom_id = str(data.get("custom_id", ""))
        if not custom_id.startswith(CANCEL_BUTTON):
            return
        job_id = parse_int(custom_id[len(CANCEL_BUTTON) :])
        if interaction.guild is None or job_id is None:
            return
        if not await may_manage_timers(interaction.user, interaction.guild):
            await interaction.response.send_message(ADMIN_ONLY, ephemeral=True)
            return
        try:
            job = await call(bulk_job_cancel, guild_id=interaction.guild.id, job_id=job_id, actor_id=interaction.user.id)
        except TimerError as exc:
            await interaction.response.send_message(str(exc), ephemeral=True)
            return
        await interaction.response.send_message(_cancelled_text(job), ephemeral=True)

    async def cog_unload(self) -> None:
        group = self.bot.tree.get_command("timer")
        if isinstance(group, app_commands.Group):
            for command in SLASH:
                group.remove_command(command.name)
        root = self.bot.get_command("timer")
        if isinstance(root, commands.Group):
            for _, name in PREFIX:
                root.remove_command(name)
        if self._own_root is not None:
            self.bot.remove_command("timer")


async def setup(bot) -> None:
    await bot.add_cog(TimerBulk(bot))
