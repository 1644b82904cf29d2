"""Adding and removing a member's role through Discord, with the outcome in the domain's words."""

from __future__ import annotations

import logging

import discord

from timers.models import ExpiryOutcome

logger = logging.getLogger(__name__)
UNKNOWN_MEMBER = 10007
UNKNOWN_ROLE = 10011


def outcome_of(error: discord.HTTPException | None) -> str:
    """The expiry outcome that a Discord error (or None for success) stands for."""
    if error is None:
        return ExpiryOutcome.REMOVED
    if isinstance(error, discord.NotFound):
        if error.code == UNKNOWN_MEMBER:
            return ExpiryOutcome.MEMBER_GONE
        if error.code == UNKNOWN_ROLE:
            return ExpiryOutcome.ROLE_GONE
    if isinstance(error, discord.Forbidden):
        return ExpiryOutcome.FORBIDDEN
    return ExpiryOutcome.FAILED_RETRY


async def role_remove(http: discord.http.HTTPClient, guild_id: int, user_id: int, role_id: int, reason: str) -> str:
    """Take the role away; return the outcome (never raises for Discord's answers)."""
    try:
        await http.remove_role(guild_id, user_id, role_id, reason=reason)
    except discord.HTTPException as exc:
        logger.info("removing role %s from %s in %s: %s", role_id, user_id, guild_id, exc)
        return outcome_of(exc)
    return ExpiryOutcome.REMOVED


async def role_add(http: discord.http.HTTPClient, guild_id: int, user_id: int, role_id: int, reason: str) -> None:
    """Grant the role; Discord's refusal propagates as discord.HTTPException."""
    await http.add_role(guild_id, user_id, role_id, reason=reason)
