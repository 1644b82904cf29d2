"""JSON builders for Discord API objects, with the fields discord.py 2.7 requires.

Everything returns plain dicts with string snowflakes, as Discord sends them.
"""

from __future__ import annotations

import datetime
import re

from .models import FakeChannel, FakeGuild, FakeRole, FakeUser, next_snowflake

MENTION_USER = re.compile(r"<@!?(\d+)>")
MENTION_ROLE = re.compile(r"<@&(\d+)>")
EPHEMERAL = 1 << 6
LOADING = 1 << 7


def now_iso() -> str:
    """The current time in Discord's ISO-8601 form."""
    return datetime.datetime.now(datetime.UTC).isoformat()


def user(u: FakeUser) -> dict:
    """A user object (``discriminator`` and ``avatar`` are required by discord.py)."""
    return {
        "id": str(u.id),
        "username": u.name,
        "global_name": u.global_name,
        "discriminator": "0",
        "avatar": None,
        "bot": u.bot,
        "public_flags": 0,
    }


def member(guild: FakeGuild, user_id: int, *, with_user: bool = True, permissions: bool = False) -> dict:
    """A guild member object; ``permissions`` adds the computed permission string (interactions)."""
    data = {
        "roles": [str(r) for r in guild.members[user_id]],
        "joined_at": guild.joined_at,
        "premium_since": None,
        "nick": guild.nicks.get(user_id),
        "avatar": None,
        "deaf": False,
        "mute": False,
        "pending": False,
        "flags": 0,
        "communication_disabled_until": None,
    }
    if with_user:
        data["user"] = user(guild.users[user_id])
    if permissions:
        data["permissions"] = str(guild.permissions_of(user_id))
    return data


def role(r: FakeRole) -> dict:
    """A role object (2.7 reads ``colors``)."""
    data = {
        "id": str(r.id),
        "name": r.name,
        "color": 0,
        "colors": {"primary_color": 0, "secondary_color": None, "tertiary_color": None},
        "hoist": False,
        "icon": None,
        "unicode_emoji": None,
        "position": r.position,
        "permissions": str(r.permissions),
        "managed": r.managed,
        "mentionable": False,
        "flags": 0,
    }
    if r.bot_id is not None:
        data["tags"] = {"bot_id": str(r.bot_id)}
    return data


def channel(c: FakeChannel, guild_id: int | None) -> dict:
    """A guild channel object."""
    data = {
        "id": str(c.id),
        "type": c.type,
        "name": c.name,
        "position": c.position,
        "permission_overwrites": [],
        "nsfw": False,
        "topic": None,
        "last_message_id": None,
        "parent_id": str(c.parent_id) if c.parent_id else None,
        "rate_limit_per_user": 0,
        "flags": 0,
    }
    if guild_id is not None:
        data["guild_id"] = str(guild_id)
    if c.type in (2, 13):  # voice and stage channels
        data.update(bitrate=64000, user_limit=0, rtc_region=None)
    return data


def dm_channel(channel_id: int, recipient: FakeUser) -> dict:
    """A DM channel object."""
    return {"id": str(channel_id), "type": 1, "last_message_id": None, "recipients": [user(recipient)], "flags": 0}


def guild(g: FakeGuild, *, with_counts: bool = False) -> dict:
    """A guild object as REST returns it (no members/channels)."""
    data = {
        "id": str(g.id),
        "name": g.name,
        "icon": None,
        "splash": None,
        "discovery_splash": None,
        "banner": None,
        "description": None,
        "owner_id": str(g.owner_id),
        "afk_channel_id": None,
        "afk_timeout": 300,
        "verification_level": 0,
        "default_message_notifications": 0,
        "explicit_content_filter": 0,
        "mfa_level": 0,
        "nsfw_level": 0,
        "premium_tier": 0,
        "premium_subscription_count": 0,
        "premium_progress_bar_enabled": False,
        "preferred_locale": "en-US",
        "system_channel_id": None,
        "system_channel_flags": 0,
        "rules_channel_id": None,
        "public_updates_channel_id": None,
        "vanity_url_code": None,
        "application_id": None,
        "max_members": 500000,
        "features": [],
        "roles": [role(r) for r in g.roles],
        "emojis": [],
        "stickers": [],
    }
    if with_counts:
        data.update(approximate_member_count=len(g.members), approximate_presence_count=0)
    return data


def guild_create(g: FakeGuild, *, bot_id: int, large_threshold: int) -> dict:
    """GUILD_CREATE for a guild: roles, channels, and members.

    A guild with more members than the client's ``large_threshold`` is ``large``: like
    Discord, only the bot's member is included and the client fetches the rest with op 8.
    Otherwise every member is included and ``member_count == len(members)`` so discord.py
    considers the guild chunked and doesn't wait for chunks.
    """
    large = len(g.members) > large_threshold
    member_ids = [bot_id] if large else list(g.members)
    data = guild(g)
    data.update(
        channels=[channel(c, None) for c in g.channels],
        members=[member(g, uid) for uid in member_ids if uid in g.members],
        member_count=len(g.members),
        large=large,
        joined_at=g.joined_at,
        unavailable=False,
        lazy=True,
        threads=[],
        voice_states=[],
        presences=[],
        stage_instances=[],
        guild_scheduled_events=[],
        soundboard_sounds=[],
    )
    return data


def application(app_id: int, bot: FakeUser, owner: FakeUser, flags: int) -> dict:
    """The application object of ``GET /oauth2/applications/@me``."""
    return {
        "id": str(app_id),
        "name": bot.name,
        "icon": None,
        "description": "",
        "summary": "",
        "type": None,
        "bot_public": True,
        "bot_require_code_grant": False,
        "verify_key": "0" * 64,
        "owner": user(owner),
        "team": None,
        "flags": flags,
        "bot": user(bot),
        "redirect_uris": [],
        "interactions_endpoint_url": None,
        "tags": [],
        "approximate_guild_count": 1,
        "integration_types_config": {"0": {}},
    }


def mentions_in(content: str, g: FakeGuild | None, allowed: dict | None) -> tuple[list[dict], list[str], bool]:
    """(mentions, mention_roles, mention_everyone) parsed from content, as Discord does.

    ``allowed`` is a message's ``allowed_mentions``: only the kinds it allows count, so
    a test can see whether the bot would have pinged roles or @everyone.
    """
    parse = None if allowed is None else set(allowed.get("parse", ()))
    allowed_users = None if allowed is None else {int(u) for u in allowed.get("users", ())}
    allowed_roles = None if allowed is None else {int(r) for r in allowed.get("roles", ())}
    users_found: list[dict] = []
    seen: set[int] = set()
    for match in MENTION_USER.finditer(content):
        uid = int(match.group(1))
        if uid in seen or g is None or uid not in g.users:
            continue
        if parse is not None and "users" not in parse and uid not in allowed_users:
            continue
        seen.add(uid)
        entry = user(g.users[uid])
        if uid in g.members:
            entry["member"] = member(g, uid, with_user=False)
        users_found.append(entry)
    roles_found = []
    for match in MENTION_ROLE.finditer(content):
        rid = int(match.group(1))
        if g is None or g.role_by_id(rid) is None or str(rid) in roles_found:
            continue
        if parse is not None and "roles" not in parse and rid not in allowed_roles:
            continue
        roles_found.append(str(rid))
    everyone = ("@everyone" in content or "@here" in content) and (parse is None or "everyone" in parse)
    return users_found, roles_found, everyone


def message(
    *,
    channel_id: int,
    guild: FakeGuild | None,
    author: FakeUser,
    content: str = "",
    embeds: list | None = None,
    attachments: list | None = None,
    allowed_mentions: dict | None = None,
    message_id: int | None = None,
    extra: dict | None = None,
) -> dict:
    """A message object; ``member`` is the author's partial member in a guild."""
    mentions, mention_roles, everyone = mentions_in(content, guild, allowed_mentions)
    data = {
        "id": str(message_id or next_snowflake()),
        "channel_id": str(channel_id),
        "author": user(author),
        "content": content,
        "timestamp": now_iso(),
        "edited_timestamp": None,
        "tts": False,
        "mention_everyone": everyone,
        "mentions": mentions,
        "mention_roles": mention_roles,
        "attachments": attachments or [],
        "embeds": embeds or [],
        "pinned": False,
        "type": 0,
        "flags": 0,
        "components": [],
    }
    if guild is not None:
        data["guild_id"] = str(guild.id)
        if author.id in guild.members:
            data["member"] = member(guild, author.id, with_user=False)
    if extra:
        data.update(extra)
    return data


def member_update(g: FakeGuild, user_id: int) -> dict:
    """GUILD_MEMBER_UPDATE data for a member."""
    data = member(g, user_id)
    data["guild_id"] = str(g.id)
    return data
