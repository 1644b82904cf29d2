"""Message components: a member clicking a button on one of the bot's messages (an INTERACTION_CREATE of type 3).

Like Discord, only a button that is on the stored message can be clicked; the interaction
carries the message, the member (with permissions) and a token for the callback::

    click_button(fake, guild_id, message_id, alice.id, "guildhall:bulk-cancel:7")
"""

from __future__ import annotations

import secrets

from . import payloads
from .commands import ATTACHMENT_SIZE_LIMIT
from .models import next_snowflake
from .server import FakeDiscord


def buttons_of(message: dict) -> list[dict]:
    """The buttons (type 2) in a message's action rows."""
    return [c for row in message.get("components") or [] for c in row.get("components", []) if c.get("type") == 2]


def click_button(fake: FakeDiscord, guild_id: int, message_id: int, user_id: int, custom_id: str) -> dict:
    """Click the button ``custom_id`` on the bot's message ``message_id`` as ``user_id``; returns the interaction."""
    state = fake.state
    g = state.guilds[guild_id]
    if user_id not in g.members:
        raise ValueError(f"user {user_id} is not a member of guild {guild_id}")
    with state.lock:
        message = state.message_store.get(message_id)
        if message is None:
            raise ValueError(f"no message {message_id}")
        if custom_id not in [b.get("custom_id") for b in buttons_of(message)]:
            raise ValueError(f"message {message_id} has no button {custom_id!r}: {buttons_of(message)}")
        channel_id = int(message["channel_id"])
        where = g.channel_by_id(channel_id)
        interaction = {
            "id": str(next_snowflake()),
            "application_id": str(state.app_id),
            "type": 3,
            "data": {"custom_id": custom_id, "component_type": 2},
            "message": dict(message),
            "guild_id": str(g.id),
            "guild": {"id": str(g.id), "locale": "en-US", "features": []},
            "channel_id": str(channel_id),
            "channel": payloads.channel(where, g.id) | {"permissions": str(g.permissions_of(user_id))},
            "member": payloads.member(g, user_id, permissions=True),
            "token": secrets.token_urlsafe(48),
            "version": 1,
            "app_permissions": str(g.permissions_of(state.bot_user.id)),
            "locale": "en-US",
            "guild_locale": "en-US",
            "entitlements": [],
            "authorizing_integration_owners": {"0": str(g.id)},
            "context": 0,
            "attachment_size_limit": ATTACHMENT_SIZE_LIMIT,
        }
        state.interactions[int(interaction["id"])] = interaction

    async def go() -> dict:
        await fake.gateway.dispatch(guild_id, "INTERACTION_CREATE", interaction)
        return interaction

    return fake._call(go())
