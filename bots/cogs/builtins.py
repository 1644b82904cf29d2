"""Built-in commands: help, ping, uptime, roll, dice, 8ball, coinflip, choose, countdown."""

from __future__ import annotations

import random
import time
from datetime import timedelta

from discord.ext import commands
from django.utils import timezone

from bots.bot import guild_of
from bots.db import call
from commands.builtin_replies import EIGHT_BALL, choose_one, countdown_text, dice_roll, roll_number
from commands.command_templates import defuse_mentions
from commands.selectors import command_describe, command_names_listing
from timers.durations import format_duration

BUILTINS_HELP = (
    "`help [name]` · `ping` · `uptime` · `roll [N|XdY]` · `dice XdY+Z` · `8ball <question>` · `coinflip` · "
    "`choose a b c` · `countdown YYYY-MM-DD` · `listCommands` · `addCommand <name> <reply>` · `removeCommand <name>` · "
    "`cookies [@member]` · `/timer …`"
)
MAX_LISTED = 60

# The `type: ignore[arg-type]` on hybrid command decorators: discord.py 2.7's hybrid_command
# leaves its Context type variable unsolved under mypy 2, so every such signature is refused.


class Builtins(commands.Cog):
    def __init__(self, bot) -> None:
        self.bot = bot
        self.rng = random.SystemRandom()

    @commands.hybrid_command(name="help")  # type: ignore[arg-type]
    async def help_(self, ctx: commands.Context, name: str | None = None) -> None:
        """List the commands, or show one custom command."""
        prefix = ctx.clean_prefix if ctx.interaction is None else "/"
        if ctx.guild is None:
            await ctx.send(f"Built-ins: {BUILTINS_HELP}")
            return
        if name:
            detail = await call(command_describe, guild_id=guild_of(ctx).id, name=name)
            await ctx.send(defuse_mentions(detail) if detail else f"There is no command called `{name[:32]}`.")
            return
        names, total = await call(command_names_listing, guild_id=guild_of(ctx).id, limit=MAX_LISTED)
        custom = ", ".join(f"`{prefix}{n}`" for n in names) or "none yet"
        more = f" and {total - len(names)} more (see `{prefix}listCommands`)" if total > len(names) else ""
        await ctx.send(f"Built-ins: {BUILTINS_HELP}\nThis server's commands: {custom}{more}")

    @commands.hybrid_command()  # type: ignore[arg-type]
    async def ping(self, ctx: commands.Context) -> None:
        """Check that the bot answers, with the gateway latency (and, when sharded, the server's shard)."""
        shard = self.bot.get_shard(ctx.guild.shard_id) if ctx.guild is not None else None
        latency = shard.latency if shard is not None else self.bot.latency
        where = f" (shard {shard.id} of {shard.shard_count})" if shard is not None and (shard.shard_count or 1) > 1 else ""
        await ctx.send(f"Pong! {latency * 1000:.0f} ms{where}")

    @commands.hybrid_command()  # type: ignore[arg-type]
    async def uptime(self, ctx: commands.Context) -> None:
        """How long the bot has been running."""
        await ctx.send(f"Up for {format_duration(timedelta(seconds=time.monotonic() - self.bot.started_monotonic))}.")

    @commands.hybrid_command()  # type: ignore[arg-type]
    async def roll(self, ctx: commands.Context, *, what: str = "") -> None:
        """Roll 1-100, 1-N, or dice like 2d6."""
        await ctx.send(roll_number(what, self.rng))

    @commands.hybrid_command()  # type: ignore[arg-type]
    async def dice(self, ctx: commands.Context, *, expression: str) -> None:
        """Roll dice: XdY+Z, like 2d6 or 3d8+2."""
        await ctx.send(dice_roll(expression, self.rng))

    @commands.hybrid_command(name="8ball")  # type: ignore[arg-type]
    async def eight_ball(self, ctx: commands.Context, *, question: str = "") -> None:
        """Ask the magic 8-ball."""
        await ctx.send(f"🎱 {self.rng.choice(EIGHT_BALL)}")

    @commands.hybrid_command()  # type: ignore[arg-type]
    async def coinflip(self, ctx: commands.Context) -> None:
        """Heads or tails."""
        await ctx.send(f"🪙 {self.rng.choice(('Heads', 'Tails'))}!")

    @commands.hybrid_command()  # type: ignore[arg-type]
    async def choose(self, ctx: commands.Context, *, options: str) -> None:
        """Pick one of several options."""
        await ctx.send(f"I choose: {defuse_mentions(choose_one(options, self.rng))}")

    @commands.hybrid_command()  # type: ignore[arg-type]
    async def countdown(self, ctx: commands.Context, *, day: str) -> None:
        """Days until a date (YYYY-MM-DD)."""
        await ctx.send(countdown_text(day, timezone.now().date()))


async def setup(bot) -> None:
    await bot.add_cog(Builtins(bot))
