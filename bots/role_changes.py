"""The one client for a member's roles on Discord: grant and take, with the answer in the domain's words.

Used by the bot (its own ``bot.http``), the timer engine and the worker's tasks (a
:class:`bots.rest.DiscordRest`'s ``http``): all of them get a :class:`RoleChange` back and
none has to catch Discord's errors.
"""

from __future__ import annotations

import logging
from collections.abc import Awaitable
from dataclasses import dataclass
from typing import Any

import discord
from discord.http import HTTPClient

from timers.models import ExpiryOutcome

logger = logging.getLogger(__name__)
UNKNOWN_MEMBER = 10007
UNKNOWN_ROLE = 10011


@dataclass(frozen=True)
class RoleChange:
    """What Discord answered: done, or refused with the expiry outcome that stands for."""

    refusal: str = ""  # "" when done; else an ExpiryOutcome value (member gone, forbidden, failed-will-retry…)
    detail: str = ""  # Discord's words when refused ("403 50013: Missing Permissions")
    text: str = ""  # Discord's message alone, for a member to read

    @property
    def done(self) -> bool:
        return not self.refusal

    @property
    def expiry_outcome(self) -> str:
        """The outcome of taking the role at expiry (``removed`` when it was done)."""
        return self.refusal or ExpiryOutcome.REMOVED


def outcome_of(error: discord.HTTPException) -> str:
    """The expiry outcome that a Discord error stands for."""
    if isinstance(error, discord.NotFound):
        if error.code == UNKNOWN_MEMBER:
            return ExpiryOutcome.MEMBER_GONE
        if error.code == UNKNOWN_ROLE:
            return ExpiryOutcome.ROLE_GONE
    if isinstance(error, discord.Forbidden):
        return ExpiryOutcome.FORBIDDEN
    return ExpiryOutcome.FAILED_RETRY


def _refused(exc: discord.HTTPException) -> RoleChange:
    return RoleChange(
        refusal=outcome_of(exc), detail=f"{exc.status} {exc.code}: {exc.text}"[:300], text=exc.text or str(exc.status)
    )


async def _answered(request: Awaitable[Any], what: str) -> RoleChange:
    try:
        await request
    except discord.HTTPException as exc:
        logger.info("%s: %s", what, exc)
        return _refused(exc)
    return RoleChange()


async def role_add(http: HTTPClient, guild_id: int, user_id: int, role_id: int, reason: str) -> RoleChange:
    """Grant the role (idempotent on Discord's side); never raises for Discord's answers."""
    request = http.add_role(guild_id, user_id, role_id, reason=reason)
    return await _answered(request, f"adding role {role_id} to {user_id} in {guild_id}")


async def role_remove(http: HTTPClient, guild_id: int, user_id: int, role_id: int, reason: str) -> RoleChange:
    """Take the role away (idempotent on Discord's side); never raises for Discord's answers."""
    request = http.remove_role(guild_id, user_id, role_id, reason=reason)
    return await _answered(request, f"removing role {role_id} from {user_id} in {guild_id}")
