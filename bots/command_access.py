"""Whether a member may use a restricted custom command here, from the message's or interaction's own data.

discord.py builds the author of a guild message or interaction as a ``Member`` from the
member data in the payload, with the role ids in ``_roles``: reading them costs no query
and needs no member cache (the bot keeps none). ``Member.roles`` would build and sort a
Role object per id; the check wants only the ids, against the command's frozensets.
"""

from __future__ import annotations

import time

import discord

from bots.guild_cache import CachedCommand

NO_PINGS = discord.AllowedMentions.none()
REPEAT_SECONDS = 10.0  # a refused member hears why once per command in this time, not on every try
_MAX_REMEMBERED = 10_000


def refusal_for(cached: CachedCommand, author: discord.abc.User, channel: object) -> str | None:
    """Why ``author`` may not use ``cached`` in ``channel`` (a phrase after the command's name), or None."""
    restriction = cached.restriction
    if restriction is None:
        return None
    role_ids = getattr(author, "_roles", ())  # a User (no member data) holds no roles
    return restriction.refusal(role_ids, getattr(channel, "id", 0), getattr(channel, "parent_id", None))


class RefusalThrottle:
    """Remembers whom the bot told "no" lately, so that a member retrying is answered once, not each time."""

    def __init__(self, repeat_seconds: float = REPEAT_SECONDS) -> None:
        self.repeat_seconds = repeat_seconds
        self._told: dict[tuple[int, int], float] = {}

    def may_tell(self, member_id: int, command_pk: int) -> bool:
        now = time.monotonic()
        key = (member_id, command_pk)
        if now - self._told.get(key, -self.repeat_seconds) < self.repeat_seconds:
            return False
        if len(self._told) >= _MAX_REMEMBERED:
            self._told = {k: at for k, at in self._told.items() if now - at < self.repeat_seconds}
        self._told[key] = now
        return True


def refusal_text(shown_name: str, reason: str) -> str:
    return f"`{shown_name}` {reason}."
