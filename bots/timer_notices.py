"""Grant notices (a timed role given or extended, with its end time) to a channel or by DM.

Sent by the bot after ``/timer set``/``add`` and by the worker after a dashboard or API
change; both go through one HTTP client (the bot's ``http`` or a ``DiscordRest``'s) and
one nonce per change, so a repeat after a crash is not posted twice.
"""

from __future__ import annotations

import logging

import discord
from discord.http import HTTPClient, handle_message_parameters

from bots.db import call
from bots.rest import nonce_for
from timers.models import TimedRole
from timers.notices import timer_notice_text, timer_notice_wanted
from timers.services import timer_settings_get

logger = logging.getLogger(__name__)


async def timer_notice_send(http: HTTPClient, timer: TimedRole, kind: str) -> str:
    """Tell the member by the guild's ``notice`` setting; where it went ("off", "channel", "dm", "failed")."""
    settings = await call(timer_settings_get, guild_id=timer.guild_id)
    if not timer_notice_wanted(settings, kind):
        return "off"
    text = timer_notice_text(timer, kind)
    stamp = int(timer.expires_at.timestamp()) if timer.expires_at else 0
    nonce = nonce_for("notice", timer.pk, kind, stamp)
    # The member alone may be pinged: never a role, @everyone or @here.
    mentions = discord.AllowedMentions(everyone=False, roles=False, users=[discord.Object(timer.member_id)])
    try:
        if settings.notice == "channel" and settings.notice_channel_id:
            channel_id, where = settings.notice_channel_id, "channel"
        else:
            channel_id, where = int((await http.start_private_message(timer.member_id))["id"]), "dm"
        with handle_message_parameters(content=text, nonce=nonce, allowed_mentions=mentions) as params:
            await http.send_message(channel_id, params=params)
    except discord.HTTPException as exc:
        logger.info("grant notice for timer %s not sent: %s", timer.pk, exc)
        return "failed"
    return where
