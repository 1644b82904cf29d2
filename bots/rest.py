"""Discord's REST API for the worker: a logged-in client and posts, no gateway (roles: bots.role_changes).

Built on discord.py's own HTTP client, which keeps Discord's per-route and global rate
limits (it waits out 429 ``retry_after``) and backs off on 5xx; bots.ratelimit shares the
limits with every other process before each request. Posts carry a nonce with
``enforce_nonce`` so that a send repeated after a crash is not posted twice.
"""

from __future__ import annotations

import asyncio
import hashlib
import logging

import discord
from discord.http import HTTPClient, handle_message_parameters
from django.conf import settings

from bots.ratelimit import SharedRateLimits, shared_rate_limits
from bots.runtime import apply_endpoints

logger = logging.getLogger(__name__)
CANNOT_POST = (discord.Forbidden, discord.NotFound)


def nonce_for(*parts: object) -> str:
    """A stable nonce (Discord takes at most 25 characters) for one logical post."""
    return hashlib.blake2b(":".join(map(str, parts)).encode(), digest_size=12).hexdigest()[:25]


class DiscordRest:
    """``async with DiscordRest() as rest:`` — log in with the bot token, then call."""

    http: HTTPClient  # set on entering

    def __init__(self, token: str | None = None) -> None:
        self.token = token or settings.DISCORD_TOKEN
        self._dm_channels: dict[int, int] = {}
        self.rate_limits: SharedRateLimits | None = None

    async def __aenter__(self) -> DiscordRest:
        if not self.token:
            raise RuntimeError("DISCORD_TOKEN is not set")
        apply_endpoints()
        # Discord's limits counted with every other process (Redis) before each request.
        self.rate_limits = shared_rate_limits()
        trace = self.rate_limits.trace_config() if self.rate_limits is not None else None
        self.http = HTTPClient(asyncio.get_running_loop(), http_trace=trace)
        await self.http.static_login(self.token)
        return self

    async def __aexit__(self, *exc: object) -> None:
        if getattr(self, "http", None) is not None:
            await self.http.close()
        if self.rate_limits is not None:
            await self.rate_limits.close()

    async def post(
        self,
        channel_id: int,
        *,
        content: str | None = None,
        embed: discord.Embed | None = None,
        nonce: str | None = None,
        ping_users: list[int] | None = None,
        embeds: list[discord.Embed] | None = None,
    ) -> int:
        """Post to a channel (one embed, or up to ten); return the message id. Raises discord.HTTPException."""
        mentions = discord.AllowedMentions(everyone=False, roles=False, users=[discord.Object(u) for u in ping_users or []])
        with handle_message_parameters(
            content=content,
            embed=embed if embed is not None else discord.utils.MISSING,
            embeds=embeds if embeds is not None else discord.utils.MISSING,
            nonce=nonce,
            allowed_mentions=mentions,
        ) as params:
            message = await self.http.send_message(channel_id, params=params)
        return int(message["id"])

    async def post_or_dm(self, channel_id: int | None, user_id: int, content: str, nonce: str) -> str:
        """Post to the channel when the bot may, else DM the member; say where it went."""
        if channel_id:
            try:
                await self.post(channel_id, content=content, nonce=nonce, ping_users=[user_id])
                return "channel"
            except CANNOT_POST as exc:
                logger.info("cannot post to channel %s (%s); sending a DM instead", channel_id, exc.status)
        try:
            dm = self._dm_channels.get(user_id)
            if dm is None:
                dm = self._dm_channels[user_id] = int((await self.http.start_private_message(user_id))["id"])
            await self.post(dm, content=content, nonce=nonce)
            return "dm"
        except CANNOT_POST as exc:
            logger.info("cannot DM member %s (%s)", user_id, exc.status)
            return "nowhere"
