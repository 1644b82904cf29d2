"""The directory's listeners: names of guilds, roles, channels and members from what the gateway sends.

Members come from the member data that arrives anyway (message authors and mentions,
interaction users and resolved options, member events), never from discord.py's member
cache, which stays off. With no cache discord.py drops GUILD_MEMBER_UPDATE for members it
doesn't hold, so the cog wraps that event's parser and dispatches ``raw_member_update``
(the payload dict) first; other features may listen to it too.

Every listener is a dict update in ``bots.directory.DirectoryBuffer``; the loop here
writes the buffer every ``DIRECTORY_FLUSH_SECONDS`` (5 s) (sooner past ``FLUSH_ROWS``) and on unload.
"""

from __future__ import annotations

import logging
import time
from typing import Any

import discord
from discord.ext import commands, tasks
from discord.utils import parse_time
from django.conf import settings

from bots.directory import FLUSH_ROWS, DirectoryBuffer
from config.database import is_transient
from guilds.services.directory import ChannelSeen, GuildSeen, MemberLeft, MemberSeen, RoleSeen, Roster

logger = logging.getLogger(__name__)
RAW_MEMBER_UPDATE = "GUILD_MEMBER_UPDATE"


def member_seen(guild_id: int, member: discord.Member) -> MemberSeen:
    return MemberSeen(
        guild_id=guild_id,
        user_id=member.id,
        username=member.name,
        global_name=member.global_name or "",
        nick=member.nick or "",
        bot=member.bot,
        joined_at=member.joined_at,
    )


def member_seen_raw(guild_id: int, data: dict[str, Any]) -> MemberSeen | None:
    """A member from a raw member object (``user`` inside), or None if it has no user."""
    user = data.get("user")
    if not user:
        return None
    return MemberSeen(
        guild_id=guild_id,
        user_id=int(user["id"]),
        username=user.get("username") or "",
        global_name=user.get("global_name") or "",
        nick=data.get("nick") or "",
        bot=bool(user.get("bot", False)),
        joined_at=parse_time(data.get("joined_at")),
    )


class Directory(commands.Cog):
    def __init__(self, bot: commands.Bot) -> None:
        self.bot = bot
        self.buffer = DirectoryBuffer()
        self._last_flush = time.monotonic()
        self._original_parser: Any = None

    async def cog_load(self) -> None:
        parsers = self.bot._connection.parsers
        self._original_parser = original = parsers[RAW_MEMBER_UPDATE]

        def parse_member_update(data: dict) -> None:
            self.bot.dispatch("raw_member_update", data)
            original(data)

        parsers[RAW_MEMBER_UPDATE] = parse_member_update
        self.write.start()

    async def cog_unload(self) -> None:
        if self._original_parser is not None:
            self.bot._connection.parsers[RAW_MEMBER_UPDATE] = self._original_parser
        self.write.cancel()
        try:
            await self.buffer.flush(everything=True)  # shutdown: nothing seen is left behind
        except Exception:
            logger.exception("directory: the last flush failed; %d rows not written", self.buffer.pending)

    # --- the loop ----------------------------------------------------------------------------
    @tasks.loop(seconds=0.5)
    async def write(self) -> None:
        buffer = self.buffer
        due = time.monotonic() - self._last_flush >= settings.DIRECTORY_FLUSH_SECONDS
        if not (due or buffer.pending >= FLUSH_ROWS):
            return
        self._last_flush = time.monotonic()
        try:
            written = await buffer.flush()
        except Exception as exc:  # kept for the next turn; a missed flush must not end the loop
            if is_transient(exc):
                logger.warning("directory: database away, %d rows wait for the next flush: %s", buffer.pending, exc)
            else:
                logger.exception("directory: flush failed; %d rows wait for the next flush", buffer.pending)
            return
        if written:
            logger.info("directory: wrote %d rows (flush %d, %d rows in all)", written, buffer.flushes, buffer.rows_written)

    # --- members -----------------------------------------------------------------------------
    @commands.Cog.listener()
    async def on_message(self, message: discord.Message) -> None:
        guild = message.guild
        if guild is None:
            return
        author = message.author
        if isinstance(author, discord.Member):
            self.buffer.member_seen(member_seen(guild.id, author))
        for mentioned in message.mentions:
            if isinstance(mentioned, discord.Member):
                self.buffer.member_seen(member_seen(guild.id, mentioned))

    @commands.Cog.listener()
    async def on_interaction(self, interaction: discord.Interaction) -> None:
        guild_id = interaction.guild_id
        if guild_id is None:
            return
        if isinstance(interaction.user, discord.Member):
            self.buffer.member_seen(member_seen(guild_id, interaction.user))
        data: Any = interaction.data or {}
        resolved: dict[str, Any] = data.get("resolved") or {}
        users: dict[str, Any] = resolved.get("users") or {}
        for user_id, partial in (resolved.get("members") or {}).items():
            seen = member_seen_raw(guild_id, partial | {"user": users.get(user_id)})
            if seen is not None:
                self.buffer.member_seen(seen)

    @commands.Cog.listener()
    async def on_member_join(self, member: discord.Member) -> None:
        self.buffer.member_seen(member_seen(member.guild.id, member))

    @commands.Cog.listener()
    async def on_raw_member_update(self, data: dict) -> None:
        seen = member_seen_raw(int(data["guild_id"]), data)
        if seen is not None:
            self.buffer.member_seen(seen)

    @commands.Cog.listener()
    async def on_raw_member_remove(self, payload: discord.RawMemberRemoveEvent) -> None:
        user = payload.user
        self.buffer.member_left(
            MemberLeft(
                guild_id=payload.guild_id, user_id=user.id, username=user.name, global_name=user.global_name or "", bot=user.bot
            )
        )

    # --- guilds, roles, channels -------------------------------------------------------------
    def _whole_guild(self, guild: discord.Guild) -> None:
        self.buffer.guild_seen(GuildSeen(guild.id, guild.name))
        for role in guild.roles:
            self.buffer.role_seen(RoleSeen(guild.id, role.id, role.name, role.position))
        for channel in guild.channels:
            self.buffer.channel_seen(ChannelSeen(guild.id, channel.id, channel.name, channel.type.value))
        self.buffer.roster(Roster(guild.id, frozenset(r.id for r in guild.roles), frozenset(c.id for c in guild.channels)))
        me = guild.me
        if me is not None:
            self.buffer.member_seen(member_seen(guild.id, me))

    @commands.Cog.listener()
    async def on_guild_available(self, guild: discord.Guild) -> None:
        self._whole_guild(guild)

    @commands.Cog.listener()
    async def on_guild_join(self, guild: discord.Guild) -> None:
        self._whole_guild(guild)

    @commands.Cog.listener()
    async def on_guild_update(self, before: discord.Guild, after: discord.Guild) -> None:
        self.buffer.guild_seen(GuildSeen(after.id, after.name))

    @commands.Cog.listener()
    async def on_guild_remove(self, guild: discord.Guild) -> None:
        self.buffer.went_away("guild", guild.id)

    @commands.Cog.listener()
    async def on_guild_role_create(self, role: discord.Role) -> None:
        self.buffer.role_seen(RoleSeen(role.guild.id, role.id, role.name, role.position))

    @commands.Cog.listener()
    async def on_guild_role_update(self, before: discord.Role, after: discord.Role) -> None:
        self.buffer.role_seen(RoleSeen(after.guild.id, after.id, after.name, after.position))

    @commands.Cog.listener()
    async def on_guild_role_delete(self, role: discord.Role) -> None:
        self.buffer.went_away("role", role.id)

    @commands.Cog.listener()
    async def on_guild_channel_create(self, channel: discord.abc.GuildChannel) -> None:
        self.buffer.channel_seen(ChannelSeen(channel.guild.id, channel.id, channel.name, channel.type.value))

    @commands.Cog.listener()
    async def on_guild_channel_update(self, before: discord.abc.GuildChannel, after: discord.abc.GuildChannel) -> None:
        self.buffer.channel_seen(ChannelSeen(after.guild.id, after.id, after.name, after.type.value))

    @commands.Cog.listener()
    async def on_guild_channel_delete(self, channel: discord.abc.GuildChannel) -> None:
        self.buffer.went_away("channel", channel.id)


async def setup(bot: commands.Bot) -> None:
    await bot.add_cog(Directory(bot))
