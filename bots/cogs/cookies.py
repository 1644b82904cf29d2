"""Cookies in chat: `@member++` gives one, `@member--` takes one, `thanks @member` gives one when the server
turns it on; /cookies shows counts and toplists and manages counts (cookie roles and thanks: cookie_settings)."""

from __future__ import annotations

import logging
from typing import Literal

import discord
from discord.ext import commands

from bots.bot import guild_of
from bots.checks import command_manager, guild_admin
from bots.converters import WholeNumber
from bots.cookie_roles import MemberLocks, RecentChanges, cookie_roles_sync
from bots.db import call
from commands.errors import CookieError, CookieRoleInvalid
from commands.selectors import PERIOD_NAMES, cookie_leaderboard, cookie_roles_list, cookie_roles_reach, cookie_standings
from commands.services import (
    cookie_give,
    cookie_mentions_parse,
    cookie_reset,
    cookie_role_add,
    cookie_role_remove,
    cookie_set,
    guild_settings_get,
    guild_settings_update,
    thanks_mentions_parse,
    thanks_might_match,
    thanks_words,
)

logger = logging.getLogger(__name__)
Period = Literal["all", "7d", "30d"]
NO_PINGS = discord.AllowedMentions.none()
# The `type: ignore[arg-type]` on hybrid command decorators: discord.py 2.7's hybrid_command
# leaves its Context type variable unsolved under mypy 2, so every such signature is refused.


def cookie_line(member_id: int, balance: int) -> str:
    """Praetbot's reply form."""
    return f"<@{member_id}> has {balance} :cookie:'s"


def held_roles(member: discord.abc.User) -> list[int] | None:
    """The roles a member holds as the message or interaction showed them (None for a bare user)."""
    return [role.id for role in member.roles] if isinstance(member, discord.Member) else None


def _members(count: int) -> str:
    return f"{count} member" if count == 1 else f"{count} members"


class Cookies(commands.Cog):
    def __init__(self, bot) -> None:
        self.bot = bot
        self.role_locks = MemberLocks()
        self.recent = RecentChanges()

    async def sync_roles(self, guild_id: int, member: discord.abc.User) -> None:
        """Grant and take the member's cookie roles for their count now (one member at a time in this process)."""
        async with self.role_locks.get(guild_id, member.id):
            held = self.recent.held(guild_id, member.id, held_roles(member))
            try:
                added, removed, refused = await cookie_roles_sync(self.bot.http, guild_id, member.id, held)
            except Exception:
                logger.exception("cookie roles of %s in %s not applied", member.id, guild_id)
                return
            self.recent.record(guild_id, member.id, added, removed)
            for refusal in refused:
                logger.info("cookie role of %s in %s refused: %s", member.id, guild_id, refusal.detail)

    @commands.Cog.listener("on_message")
    async def give_from_chat(self, message: discord.Message) -> None:
        content = message.content
        # The cheap text tests first: most messages never reach a parser or the database.
        if message.author.bot or message.guild is None or "<@" not in content:
            return
        signs = "++" in content or "--" in content
        rules = await self.bot.guild_cache.settings(message.guild.id)
        if not signs and not rules.thanks_enabled:
            return
        cap = rules.cookie_message_cap
        changes = [(member_id, delta, False) for member_id, delta in cookie_mentions_parse(content, cap)] if signs else []
        if rules.thanks_enabled and len(changes) < cap:
            words = thanks_words(rules.thanks_words)
            if thanks_might_match(content, words):
                counted = {member_id for member_id, _, _ in changes}
                thanked = [m for m in thanks_mentions_parse(content, words, cap) if m not in counted]
                changes += [(member_id, 1, True) for member_id in thanked[: cap - len(changes)]]
        if not changes:
            return
        mentioned = {user.id: user for user in message.mentions}
        lines: list[str] = []
        role_changes: list[discord.abc.User] = []
        for member_id, delta, thanks in changes:
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
                    thanks=thanks,
                )
            except CookieError as exc:
                lines.append(str(exc))
                continue
            lines.append(cookie_line(change.receiver_id, change.balance))
            if change.roles is not None:
                role_changes.append(receiver)
            if rules.cookie_dm_receiver and delta > 0:
                await self._dm(receiver, message.author.display_name, message.guild.name, change.balance)
        if lines:
            await message.channel.send("\n".join(lines)[:2000])
        for member in role_changes:
            await self.sync_roles(message.guild.id, member)

    async def _dm(self, receiver: discord.User | discord.Member, giver: str, server: str, balance: int) -> None:
        try:
            await receiver.send(f"{giver} gave you a cookie in {server}: you have {balance} now.")
        except discord.HTTPException:
            logger.info("could not DM cookie receiver %s", receiver.id)

    @commands.hybrid_group(name="cookies", fallback="show", invoke_without_command=True)  # type: ignore[arg-type]
    @commands.guild_only()
    async def cookies(self, ctx: commands.Context, member: discord.Member | None = None) -> None:
        """A member's cookies and rank all time, this week and this month (yours by default)."""
        target = member or ctx.author
        standings = await call(cookie_standings, guild_id=guild_of(ctx).id, member_id=target.id)
        ranks = [f"#{standings['all'].rank}"] if standings["all"].rank else []
        ranks += [
            f"{PERIOD_NAMES[period]} #{standings[period].rank} with {standings[period].balance}"
            for period in ("7d", "30d")
            if standings[period].rank
        ]
        rank = f" (rank {'; '.join(ranks)})" if ranks else ""
        await ctx.send(cookie_line(target.id, standings["all"].balance) + rank)

    @cookies.command(name="top")  # type: ignore[arg-type]
    async def cookies_top(self, ctx: commands.Context, page: WholeNumber = 1, period: Period = "all") -> None:
        """The toplist, ten a page: all time, the last 7 days or the last 30 days."""
        if page < 1:
            raise commands.BadArgument("Pages start at 1.")
        guild = guild_of(ctx)
        rows = await call(cookie_leaderboard, guild_id=guild.id, page=page, period=period)
        if not rows:
            nobody = "Nobody has cookies yet." if period == "all" else f"Nobody got cookies in the {PERIOD_NAMES[period]}."
            await ctx.send(nobody if page == 1 else f"There is no page {page}.")
            return
        lines = [f"**#{row.rank}** <@{row.member_id}> — {row.balance} :cookie:" for row in rows]
        mine = (await call(cookie_standings, guild_id=guild.id, member_id=ctx.author.id))[period]
        title = "Cookie leaderboard" if period == "all" else f"Cookie leaderboard, {PERIOD_NAMES[period]}"
        embed = discord.Embed(title=f"{title} — page {page}", description="\n".join(lines))
        embed.set_footer(text=f"Your rank: #{mine.rank} with {mine.balance}" if mine.rank else "You are not on this toplist.")
        await ctx.send(embed=embed, allowed_mentions=discord.AllowedMentions.none())

    @cookies.command(name="set")
    @guild_admin()
    async def cookies_set(self, ctx: commands.Context, member: discord.Member, amount: WholeNumber) -> None:
        """Set a member's cookie count (Manage Server)."""
        guild = guild_of(ctx)
        change = await call(cookie_set, guild_id=guild.id, member_id=member.id, balance=amount, actor_id=ctx.author.id)
        await ctx.send(cookie_line(member.id, change.balance), allowed_mentions=discord.AllowedMentions.none())
        if change.roles is not None:
            await self.sync_roles(guild.id, member)

    @cookies.command(name="reset")
    @guild_admin()
    async def cookies_reset(self, ctx: commands.Context, member: discord.Member | None = None) -> None:
        """Reset one member's cookies to zero, or everyone's when no member is given (Manage Server)."""
        guild = guild_of(ctx)
        # Everyone's roles are the worker's to take (paced, resumable); one member's, ours right away.
        count = await call(
            cookie_reset,
            guild_id=guild.id,
            actor_id=ctx.author.id,
            member_id=member.id if member else None,
            sync_roles_later=member is None,
        )
        who = f"<@{member.id}>'s cookies" if member else f"{count} members' cookies"
        await ctx.send(f"Reset {who} to 0.", allowed_mentions=discord.AllowedMentions.none())
        if member is not None:
            await self.sync_roles(guild.id, member)

    # Cookie roles and thanks: server settings (Manage Server or the command manager role).

    @cookies.group(name="roles", fallback="list", invoke_without_command=True)
    @command_manager()
    async def cookies_roles(self, ctx: commands.Context) -> None:
        """The cookie roles: the role a member holds from a count on."""
        guild = guild_of(ctx)
        rows = await call(cookie_roles_list, guild_id=guild.id)
        settings = await call(guild_settings_get, guild_id=guild.id)
        if not rows:
            await ctx.send("No cookie roles yet: `/cookies roles add <threshold> <role>` adds one.")
            return
        mode = "members keep every role they earned" if settings.cookie_roles_keep_all else "members keep only the highest"
        lines = [f"{row.threshold}+ :cookie: → <@&{row.role_id}>" for row in rows]
        await ctx.send("\n".join([f"**Cookie roles** ({mode})", *lines]), allowed_mentions=NO_PINGS)

    @cookies_roles.command(name="add")
    @command_manager()
    async def cookies_roles_add(self, ctx: commands.Context, threshold: WholeNumber, role: discord.Role) -> None:
        """Give a role to members from a cookie count on (moves a role that is one already)."""
        guild = guild_of(ctx)
        bot_may_grant_cookie_role(guild, role)
        if any(r.role_id == role.id and r.threshold == threshold for r in await call(cookie_roles_list, guild_id=guild.id)):
            await ctx.send(
                f"{role.mention} is already given from {threshold} :cookie: on; nothing changed.", allowed_mentions=NO_PINGS
            )
            return
        _, created = await call(cookie_role_add, guild_id=guild.id, threshold=threshold, role_id=role.id, actor_id=ctx.author.id)
        verb = "Members get" if created else "Moved:"
        reach = await call(cookie_roles_reach, guild_id=guild.id, floor=threshold)
        await ctx.send(
            f"{verb} {role.mention} from {threshold} :cookie: on; {_members(reach)} at {threshold}+ will be updated.",
            allowed_mentions=NO_PINGS,
        )

    @cookies_roles.command(name="remove")
    @command_manager()
    async def cookies_roles_remove(self, ctx: commands.Context, role: discord.Role) -> None:
        """Stop giving a role for cookies (taken from the members who reached it)."""
        guild = guild_of(ctx)
        row = await call(cookie_role_remove, guild_id=guild.id, role_id=role.id)
        reach = await call(cookie_roles_reach, guild_id=guild.id, floor=row.threshold)
        await ctx.send(
            f"{role.mention} is no longer a cookie role; it will be taken from {_members(reach)} at {row.threshold}+.",
            allowed_mentions=NO_PINGS,
        )

    @cookies_roles.command(name="mode")
    @command_manager()
    async def cookies_roles_mode(self, ctx: commands.Context, mode: Literal["keep-all", "highest"]) -> None:
        """keep-all: members keep every cookie role they reached; highest: only the highest one."""
        guild = guild_of(ctx)
        before = await call(guild_settings_get, guild_id=guild.id)
        await call(guild_settings_update, guild_id=guild.id, cookie_roles_keep_all=mode == "keep-all")
        self.bot.guild_cache.forget(guild.id)
        said = "keep every cookie role they reached" if mode == "keep-all" else "keep only their highest cookie role"
        if before.cookie_roles_keep_all == (mode == "keep-all"):
            await ctx.send(f"Members already {said}.")
            return
        rows = await call(cookie_roles_list, guild_id=guild.id)
        reach = await call(cookie_roles_reach, guild_id=guild.id, floor=min(r.threshold for r in rows)) if rows else 0
        await ctx.send(f"Members now {said}; {_members(reach)} will be updated.")

    @cookies.group(name="thanks", invoke_without_command=True)
    @command_manager()
    async def cookies_thanks(self, ctx: commands.Context) -> None:
        """Whether `thanks @member` gives a cookie here, and the phrases that count."""
        rules = await call(guild_settings_get, guild_id=guild_of(ctx).id)
        state = "on" if rules.thanks_enabled else "off"
        phrases = ", ".join(f"`{w}`" for w in thanks_words(rules.thanks_words))
        await ctx.send(f"Thanks detection is {state}; phrases: {phrases}.")

    @cookies_thanks.command(name="on")
    @command_manager()
    async def cookies_thanks_on(self, ctx: commands.Context) -> None:
        """`thanks @member` gives them a cookie, under the same cooldowns and caps as `++`."""
        await self._thanks_update(ctx, thanks_enabled=True)
        await ctx.send("Thanks detection is on: `thanks @member` gives a cookie, under the `++` rules.")

    @cookies_thanks.command(name="off")
    @command_manager()
    async def cookies_thanks_off(self, ctx: commands.Context) -> None:
        """Thanks no longer give cookies (`++` still does)."""
        await self._thanks_update(ctx, thanks_enabled=False)
        await ctx.send("Thanks detection is off.")

    @cookies_thanks.command(name="words")
    @command_manager()
    async def cookies_thanks_words(
        self, ctx: commands.Context, action: Literal["list", "add", "remove"] = "list", *, phrase: str | None = None
    ) -> None:
        """List, add or remove the phrases that count as thanks (the defaults while none are set)."""
        rules = await call(guild_settings_get, guild_id=guild_of(ctx).id)
        words = list(thanks_words(rules.thanks_words))
        if action != "list":
            cleaned = " ".join((phrase or "").lower().split())
            if not cleaned:
                raise commands.BadArgument(f"Say which phrase to {action}: `/cookies thanks words {action} thank you`.")
            if action == "add":
                words = [*words, cleaned]
            elif cleaned in words:
                words.remove(cleaned)
            else:
                raise commands.BadArgument(f"`{discord.utils.escape_markdown(cleaned)}` is not one of the phrases.")
            if not words:
                raise commands.BadArgument("Keep at least one phrase, or turn thanks detection off.")
            words = (await self._thanks_update(ctx, thanks_words=words)).thanks_words
        await ctx.send("Phrases that count as thanks: " + ", ".join(f"`{w}`" for w in words), allowed_mentions=NO_PINGS)

    async def _thanks_update(self, ctx: commands.Context, **changes):
        guild = guild_of(ctx)
        updated = await call(guild_settings_update, guild_id=guild.id, **changes)
        self.bot.guild_cache.forget(guild.id)
        return updated


def bot_may_grant_cookie_role(guild: discord.Guild, role: discord.Role) -> None:
    """Raise CookieRoleInvalid unless the bot can add and remove ``role`` in ``guild`` (checked before promising)."""
    me = guild.me
    if me is None or not me.guild_permissions.manage_roles:
        raise CookieRoleInvalid("I need the Manage Roles permission to give cookie roles.")
    if role.is_default() or role.managed:
        raise CookieRoleInvalid(f"{role.mention} is managed by Discord or an integration; I can't give it.")
    if role >= me.top_role:
        raise CookieRoleInvalid(f"{role.mention} is above my highest role; move my role above it first.")


async def setup(bot) -> None:
    await bot.add_cog(Cookies(bot))
