"""Cookies in chat: `@member++` gives one, `@member--` takes one; /cookies shows and manages counts."""

from __future__ import annotations

import logging

import discord
from discord.ext import commands

from bots.bot import guild_of
from bots.checks import guild_admin
from bots.converters import WholeNumber
from bots.db import call
from commands.errors import CookieError
from commands.selectors import cookie_leaderboard, cookie_standing
from commands.services import cookie_give, cookie_mentions_parse, cookie_reset, cookie_set

logger = logging.getLogger(__name__)
# The `type: ignore[arg-type]` on hybrid command decorators: discord.py 2.7's hybrid_command
# leaves its Context type variable unsolved under mypy 2, so every such signature is refused.


def cookie_line(member_id: int, balance: int) -> str:
    """Praetbot's reply form."""
    return f"<@{member_id}> has {balance} :cookie:'s"


class Cookies(commands.Cog):
    def __init__(self, bot) -> None:
        self.bot = bot

    @commands.Cog.listener("on_message")
    async def give_from_chat(self, message: discord.Message) -> None:
        content = message.content
        # The cheap text test first: most messages never reach the parser or the database.
        if message.author.bot or message.guild is None or "<@" not in content:
            return
        if "++" not in content and "--" not in content:
            return
        rules = await self.bot.guild_cache.settings(message.guild.id)
        changes = cookie_mentions_parse(content, rules.cookie_message_cap)
        if not changes:
            return
        mentioned = {user.id: user for user in message.mentions}
        lines: list[str] = []
        for member_id, delta in changes:
            receiver = mentioned.get(member_id)
            if receiver is None:
                continue  # not a real member mention (Discord only resolves real ones)
            try:
                change = await call(
                    cookie_give,
                    guild_id=message.guild.id,
                    giver_id=message.author.id,
                    receiver_id=member_id,
                    delta=delta,
                    receiver_is_bot=receiver.bot,
                    message_id=message.id,
                )
            except CookieError as exc:
                lines.append(str(exc))
                continue
            lines.append(cookie_line(change.receiver_id, change.balance))
            if rules.cookie_dm_receiver and delta > 0:
                await self._dm(receiver, message.author.display_name, message.guild.name, change.balance)
        if lines:
            await message.channel.send("\n".join(lines)[:2000])

    async def _dm(self, receiver: discord.User | discord.Member, giver: str, server: str, balance: int) -> None:
        try:
            await receiver.send(f"{giver} gave you a cookie in {server}: you have {balance} now.")
        except discord.HTTPException:
            logger.info("could not DM cookie receiver %s", receiver.id)

    @commands.hybrid_group(name="cookies", fallback="show", invoke_without_command=True)  # type: ignore[arg-type]
    @commands.guild_only()
    async def cookies(self, ctx: commands.Context, member: discord.Member | None = None) -> None:
        """A member's cookies and rank (yours by default)."""
        target = member or ctx.author
        standing = await call(cookie_standing, guild_id=guild_of(ctx).id, member_id=target.id)
        rank = f" (rank #{standing.rank})" if standing.rank else ""
        await ctx.send(cookie_line(target.id, standing.balance) + rank)

    @cookies.command(name="top")  # type: ignore[arg-type]
    async def cookies_top(self, ctx: commands.Context, page: WholeNumber = 1) -> None:
        """The leaderboard, ten a page."""
        if page < 1:
            raise commands.BadArgument("Pages start at 1.")
        rows = await call(cookie_leaderboard, guild_id=guild_of(ctx).id, page=page)
        if not rows:
            await ctx.send("Nobody has cookies yet." if page == 1 else f"There is no page {page}.")
            return
        lines = [f"**#{row.rank}** <@{row.member_id}> — {row.balance} :cookie:" for row in rows]
        embed = discord.Embed(title=f"Cookie leaderboard — page {page}", description="\n".join(lines))
        await ctx.send(embed=embed, allowed_mentions=discord.AllowedMentions.none())

    @cookies.command(name="set")
    @guild_admin()
    async def cookies_set(self, ctx: commands.Context, member: discord.Member, amount: WholeNumber) -> None:
        """Set a member's cookie count (Manage Server)."""
        change = await call(cookie_set, guild_id=guild_of(ctx).id, member_id=member.id, balance=amount, actor_id=ctx.author.id)
        await ctx.send(cookie_line(member.id, change.balance), allowed_mentions=discord.AllowedMentions.none())

    @cookies.command(name="reset")
    @guild_admin()
    async def cookies_reset(self, ctx: commands.Context, member: discord.Member | None = None) -> None:
        """Reset one member's cookies to zero, or everyone's when no member is given (Manage Server)."""
        count = await call(
            cookie_reset, guild_id=guild_of(ctx).id, actor_id=ctx.author.id, member_id=member.id if member else None
        )
        who = f"<@{member.id}>'s cookies" if member else f"{count} members' cookies"
        await ctx.send(f"Reset {who} to 0.", allowed_mentions=discord.AllowedMentions.none())


async def setup(bot) -> None:
    await bot.add_cog(Cookies(bot))
