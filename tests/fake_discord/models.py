"""The world the fake Discord serves: users, roles, channels and guilds as plain dataclasses.

Tests build these before starting :class:`~tests.fake_discord.server.FakeDiscord`; the fake
then owns and mutates them (role changes, members joining or leaving).
"""

from __future__ import annotations

import threading
import time
from dataclasses import dataclass, field

DISCORD_EPOCH_MS = 1420070400000

# Permission bits (https://discord.com/developers/docs/topics/permissions).
ADD_REACTIONS = 1 << 6
ADMINISTRATOR = 1 << 3
ATTACH_FILES = 1 << 15
EMBED_LINKS = 1 << 14
MANAGE_GUILD = 1 << 5
MANAGE_MESSAGES = 1 << 13
MANAGE_ROLES = 1 << 28
MENTION_EVERYONE = 1 << 17
READ_MESSAGE_HISTORY = 1 << 16
SEND_MESSAGES = 1 << 11
USE_APPLICATION_COMMANDS = 1 << 31
VIEW_CHANNEL = 1 << 10
ALL_PERMISSIONS = (1 << 53) - 1

EVERYONE_PERMISSIONS = (
    VIEW_CHANNEL | SEND_MESSAGES | READ_MESSAGE_HISTORY | EMBED_LINKS | ATTACH_FILES | ADD_REACTIONS | USE_APPLICATION_COMMANDS
)
BOT_PERMISSIONS = EVERYONE_PERMISSIONS | MANAGE_ROLES | MANAGE_MESSAGES

# Channel types that accept messages: text, DM, voice (text-in-voice), news, threads, stage.
TEXT_CHANNEL_TYPES = frozenset({0, 1, 2, 5, 10, 11, 12, 13})

_snowflake_lock = threading.Lock()
_last_snowflake = 0


def next_snowflake() -> int:
    """A new, process-unique Discord snowflake whose timestamp part is now.

    Real timestamps keep ``created_at`` sensible in discord.py; the lock and the
    ``max(last + 1, …)`` keep ids unique and increasing across threads.
    """
    global _last_snowflake
    with _snowflake_lock:
        candidate = (int(time.time() * 1000) - DISCORD_EPOCH_MS) << 22
        _last_snowflake = max(_last_snowflake + 1, candidate)
        return _last_snowflake


@dataclass(slots=True)
class FakeUser:
    """A Discord user (a person or a bot)."""

    id: int
    name: str
    bot: bool = False
    global_name: str | None = None


@dataclass(slots=True)
class FakeRole:
    """A guild role; ``position`` orders the hierarchy (higher is more powerful)."""

    id: int
    name: str
    permissions: int = 0
    position: int = 0
    managed: bool = False
    bot_id: int | None = None  # set for a bot's managed role (its "integration" role)


@dataclass(slots=True)
class FakeChannel:
    """A guild channel; ``type`` is Discord's channel type (0 text, 2 voice, 4 category)."""

    id: int
    name: str
    type: int = 0
    position: int = 0
    parent_id: int | None = None


@dataclass
class FakeGuild:
    """A guild with its roles, channels and members.

    ``members`` maps a user id to the ids of that member's roles (without @everyone);
    ``users`` maps a user id to the :class:`FakeUser`. A member without a ``users`` entry
    gets a generated user. ``nicks`` holds the members' nicknames in this guild.
    """

    id: int
    name: str
    owner_id: int
    roles: list[FakeRole] = field(default_factory=list)
    channels: list[FakeChannel] = field(default_factory=list)
    members: dict[int, list[int]] = field(default_factory=dict)
    users: dict[int, FakeUser] = field(default_factory=dict)
    nicks: dict[int, str] = field(default_factory=dict)  # user id -> nickname in this guild
    joined_at: str = "2024-01-01T00:00:00.000000+00:00"

    def __post_init__(self) -> None:
        # Discord's @everyone role has the guild's id; make sure it exists.
        if not any(role.id == self.id for role in self.roles):
            self.roles.insert(0, FakeRole(id=self.id, name="@everyone", permissions=EVERYONE_PERMISSIONS, position=0))
        for user_id in self.members:
            if user_id not in self.users:
                self.users[user_id] = FakeUser(id=user_id, name=f"user{user_id}")

    # --- look-ups ---------------------------------------------------------------------
    def role(self, name_or_id: str | int) -> FakeRole:
        """The role with this name or id (KeyError if there is none)."""
        for role in self.roles:
            if role.id == name_or_id or role.name == name_or_id:
                return role
        raise KeyError(f"guild {self.id} has no role {name_or_id!r}; roles: {[r.name for r in self.roles]}")

    def channel(self, name_or_id: str | int) -> FakeChannel:
        """The channel with this name or id (KeyError if there is none)."""
        for channel in self.channels:
            if channel.id == name_or_id or channel.name == name_or_id:
                return channel
        raise KeyError(f"guild {self.id} has no channel {name_or_id!r}; channels: {[c.name for c in self.channels]}")

    def role_by_id(self, role_id: int) -> FakeRole | None:
        """The role with this id, or None."""
        return next((role for role in self.roles if role.id == role_id), None)

    def channel_by_id(self, channel_id: int) -> FakeChannel | None:
        """The channel with this id, or None."""
        return next((channel for channel in self.channels if channel.id == channel_id), None)

    @property
    def everyone_role(self) -> FakeRole:
        """The @everyone role (its id is the guild's id)."""
        return self.role(self.id)

    @property
    def text_channel(self) -> FakeChannel:
        """The first text channel."""
        return next(channel for channel in self.channels if channel.type == 0)

    def permissions_of(self, user_id: int) -> int:
        """The member's guild-level permissions (roles only; no channel overwrites)."""
        if user_id == self.owner_id:
            return ALL_PERMISSIONS
        perms = self.everyone_role.permissions
        for role_id in self.members.get(user_id, ()):
            role = self.role_by_id(role_id)
            if role is not None:
                perms |= role.permissions
        return ALL_PERMISSIONS if perms & ADMINISTRATOR else perms

    def top_position(self, user_id: int) -> int:
        """The position of the member's highest role (0 for @everyone only)."""
        positions = [role.position for role_id in self.members.get(user_id, ()) if (role := self.role_by_id(role_id))]
        return max(positions, default=0)

    # --- builders ---------------------------------------------------------------------
    @classmethod
    def typical(
        cls,
        *,
        guild_id: int,
        bot_user: FakeUser,
        members: list[FakeUser] = (),
        admin_ids: list[int] = (),
        name: str = "Test Guild",
        owner_id: int | None = None,
    ) -> FakeGuild:
        """A guild shaped like a real community's, with the bot in it.

        Roles, bottom to top: ``@everyone`` (0: view, send, history, embeds, files,
        reactions, app commands), ``Member`` (1) and ``VIP`` (2), both plain; the bot's
        managed role named after the bot (3: MANAGE_ROLES and MANAGE_MESSAGES),
        ``Moderator`` (4: plain, *above* the bot, for hierarchy refusals) and ``Admin``
        (5: ADMINISTRATOR). Channels: text ``general`` and ``bot-log``, voice ``Voice``.
        The members in ``admin_ids`` get ``Admin``; the owner is the first admin, else a
        separate user who is not a member.
        """
        base_roles = [
            FakeRole(id=guild_id, name="@everyone", permissions=EVERYONE_PERMISSIONS, position=0),
            FakeRole(id=next_snowflake(), name="Member", position=1),
            FakeRole(id=next_snowflake(), name="VIP", position=2),
            FakeRole(
                id=next_snowflake(), name=bot_user.name, permissions=BOT_PERMISSIONS, position=3, managed=True, bot_id=bot_user.id
            ),
            FakeRole(id=next_snowflake(), name="Moderator", position=4),
            FakeRole(id=next_snowflake(), name="Admin", permissions=ADMINISTRATOR, position=5),
        ]
        bot_role, admin_role = base_roles[3], base_roles[5]
        channels = [
            FakeChannel(id=next_snowflake(), name="general", type=0, position=0),
            FakeChannel(id=next_snowflake(), name="bot-log", type=0, position=1),
            FakeChannel(id=next_snowflake(), name="Voice", type=2, position=2),
        ]
        member_roles: dict[int, list[int]] = {bot_user.id: [bot_role.id]}
        users = {bot_user.id: bot_user}
        for user in members:
            users[user.id] = user
            member_roles[user.id] = [admin_role.id] if user.id in admin_ids else []
        if owner_id is None:
            owner_id = admin_ids[0] if admin_ids else next_snowflake()
        return cls(
            id=guild_id, name=name, owner_id=owner_id, roles=base_roles, channels=channels, members=member_roles, users=users
        )

    @property
    def bot_role(self) -> FakeRole:
        """The bot's managed role (first managed role)."""
        return next(role for role in self.roles if role.managed)

    @property
    def admin_role(self) -> FakeRole:
        """The role called ``Admin``."""
        return self.role("Admin")

    @classmethod
    def with_many_members(
        cls, *, guild_id: int, bot_user: FakeUser, count: int = 50_000, first_user_id: int = 300_000_000_000_000_000, **typical
    ) -> FakeGuild:
        """A typical guild plus ``count`` plain members with consecutive ids.

        Users are built directly (no per-member role objects, no payloads); payloads are
        made only when a client asks (GUILD_CREATE carries just the bot for a large guild,
        like Discord; the rest arrive through op 8 chunks). 50,000 members take ~0.1 s.
        """
        guild = cls.typical(guild_id=guild_id, bot_user=bot_user, **typical)
        users, members = guild.users, guild.members
        for user_id in range(first_user_id, first_user_id + count):
            users[user_id] = FakeUser(user_id, f"member{user_id - first_user_id}")
            members[user_id] = []
        return guild


def shard_of(guild_id: int, shard_count: int) -> int:
    """The shard a guild belongs to (Discord's formula)."""
    return (guild_id >> 22) % shard_count
