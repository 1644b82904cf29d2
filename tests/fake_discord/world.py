"""Changes to the fake's world that Discord would announce on the gateway.

Each helper changes the fake's state first (so REST answers agree with the event at once)
and then dispatches what Discord sends for it, to the sessions covering the guild:

=============================================  =============================================
``member_join(g, user, roles=(), nick=None)``   GUILD_MEMBER_ADD (a rejoin is a join again)
``member_leave(g, user_id)``                    GUILD_MEMBER_REMOVE; REST then says 10007
``member_update(g, user_id, nick=…, name=…,     GUILD_MEMBER_UPDATE (nick, username, global
global_name=…, roles=…)``                       name or roles; only what is given changes)
``set_member_roles(g, user_id, role_ids)``      GUILD_MEMBER_UPDATE with the new roles
``guild_update(g, name=…)``                     GUILD_UPDATE
``guild_join(guild)`` / ``guild_leave(g)``      the bot is added (GUILD_CREATE) / removed
                                                (GUILD_DELETE without ``unavailable``)
``role_create(g, name, …)`` → FakeRole          GUILD_ROLE_CREATE
``role_update(g, role_id, name=…, …)``          GUILD_ROLE_UPDATE
``role_delete(g, role_id)``                     GUILD_ROLE_DELETE (members lose the role)
``channel_create(g, name, type=0)``             CHANNEL_CREATE
``channel_update(g, channel_id, name=…)``       CHANNEL_UPDATE
``channel_delete(g, channel_id)``               CHANNEL_DELETE
=============================================  =============================================

Member events reach only sessions with the members intent, as on Discord.
``add_member`` / ``remove_member`` / ``delete_role`` are the older names of
``member_join`` / ``member_leave`` / ``role_delete``.
"""

from __future__ import annotations

from typing import Any

from . import payloads
from .models import FakeChannel, FakeGuild, FakeRole, FakeUser, next_snowflake

UNSET: Any = object()


class WorldEvents:
    """Mixed into FakeDiscord: needs ``state``, ``gateway`` and ``_call``."""

    state: Any
    gateway: Any
    _call: Any

    def _change(self, guild_id: int, mutate: Any) -> Any:
        """Run ``mutate(guild)`` under the lock on the fake's loop, then dispatch the events it returns."""

        async def go() -> Any:
            g = self.state.guilds[guild_id]
            with self.state.lock:
                result, events = mutate(g)
            for event, data in events:
                await self.gateway.dispatch(guild_id, event, data)
            return result

        return self._call(go())

    # --- members --------------------------------------------------------------------------
    def member_join(self, guild_id: int, user: FakeUser, roles: list[int] = (), *, nick: str | None = None) -> None:
        """``user`` joins the guild (again, if they had left): GUILD_MEMBER_ADD."""

        def mutate(g: FakeGuild) -> tuple[None, list]:
            g.users[user.id], g.members[user.id] = user, [int(r) for r in roles]
            g.nicks.pop(user.id, None)
            if nick is not None:
                g.nicks[user.id] = nick
            return None, [("GUILD_MEMBER_ADD", payloads.member_update(g, user.id))]

        self._change(guild_id, mutate)

    def member_leave(self, guild_id: int, user_id: int) -> None:
        """A member leaves (or is kicked): GUILD_MEMBER_REMOVE; REST then answers 10007 Unknown Member."""

        def mutate(g: FakeGuild) -> tuple[None, list]:
            g.members.pop(user_id, None)
            g.nicks.pop(user_id, None)
            return None, [("GUILD_MEMBER_REMOVE", {"guild_id": str(g.id), "user": payloads.user(g.users[user_id])})]

        self._change(guild_id, mutate)

    def member_update(
        self,
        guild_id: int,
        user_id: int,
        *,
        nick: str | None = UNSET,
        name: str = UNSET,
        global_name: str | None = UNSET,
        roles: list[int] = UNSET,
    ) -> None:
        """Change a member's nickname (None clears it), username, global name or roles: GUILD_MEMBER_UPDATE."""

        def mutate(g: FakeGuild) -> tuple[None, list]:
            if user_id not in g.members:
                raise ValueError(f"user {user_id} is not a member of guild {guild_id}")
            user = g.users[user_id]
            if nick is not UNSET:
                g.nicks.pop(user_id, None)
                if nick is not None:
                    g.nicks[user_id] = nick
            if name is not UNSET:
                user.name = name
            if global_name is not UNSET:
                user.global_name = global_name
            if roles is not UNSET:
                g.members[user_id] = [int(r) for r in roles]
            return None, [("GUILD_MEMBER_UPDATE", payloads.member_update(g, user_id))]

        self._change(guild_id, mutate)

    def set_member_roles(self, guild_id: int, user_id: int, role_ids: list[int]) -> None:
        """Change a member's roles as an admin would in the client (GUILD_MEMBER_UPDATE)."""
        self.member_update(guild_id, user_id, roles=role_ids)

    def add_member(self, guild_id: int, user: FakeUser, role_ids: list[int] = ()) -> None:
        """A user joins the guild (GUILD_MEMBER_ADD); see ``member_join``."""
        self.member_join(guild_id, user, role_ids)

    def remove_member(self, guild_id: int, user_id: int) -> None:
        """A member leaves (GUILD_MEMBER_REMOVE); see ``member_leave``."""
        self.member_leave(guild_id, user_id)

    # --- the guild itself -------------------------------------------------------------------
    def guild_update(self, guild_id: int, *, name: str) -> None:
        """An admin renames the guild: GUILD_UPDATE."""

        def mutate(g: FakeGuild) -> tuple[None, list]:
            g.name = name
            return None, [("GUILD_UPDATE", payloads.guild(g))]

        self._change(guild_id, mutate)

    def guild_join(self, guild: FakeGuild) -> None:
        """The bot is added to ``guild`` (which must list the bot as a member): GUILD_CREATE."""

        async def go() -> None:
            if self.state.bot_user.id not in guild.members:
                raise ValueError(f"the bot must be a member of guild {guild.id}")
            with self.state.lock:
                self.state.guilds[guild.id] = guild
            data = payloads.guild_create(guild, bot_id=self.state.bot_user.id, large_threshold=250)
            await self.gateway.dispatch(guild.id, "GUILD_CREATE", data)

        self._call(go())

    def guild_leave(self, guild_id: int) -> None:
        """The bot is removed from the guild: GUILD_DELETE without ``unavailable``."""

        async def go() -> None:
            with self.state.lock:
                self.state.guilds.pop(guild_id)
            await self.gateway.dispatch(guild_id, "GUILD_DELETE", {"id": str(guild_id)})

        self._call(go())

    # --- roles ------------------------------------------------------------------------------
    def role_create(self, guild_id: int, name: str, *, permissions: int = 0, position: int | None = None) -> FakeRole:
        """An admin creates a role (by default just above @everyone's other roles): GUILD_ROLE_CREATE."""

        def mutate(g: FakeGuild) -> tuple[FakeRole, list]:
            top = max((r.position for r in g.roles), default=0)
            role = FakeRole(
                id=next_snowflake(), name=name, permissions=permissions, position=top + 1 if position is None else position
            )
            g.roles.append(role)
            return role, [("GUILD_ROLE_CREATE", {"guild_id": str(g.id), "role": payloads.role(role)})]

        return self._change(guild_id, mutate)

    def role_update(
        self, guild_id: int, role_id: int, *, name: str = UNSET, permissions: int = UNSET, position: int = UNSET
    ) -> None:
        """An admin edits a role: GUILD_ROLE_UPDATE."""

        def mutate(g: FakeGuild) -> tuple[None, list]:
            role = g.role(role_id)
            for attr, value in (("name", name), ("permissions", permissions), ("position", position)):
                if value is not UNSET:
                    setattr(role, attr, value)
            return None, [("GUILD_ROLE_UPDATE", {"guild_id": str(g.id), "role": payloads.role(role)})]

        self._change(guild_id, mutate)

    def role_delete(self, guild_id: int, role_id: int) -> None:
        """An admin deletes a role (GUILD_ROLE_DELETE); role changes with it then get 10011 Unknown Role."""

        def mutate(g: FakeGuild) -> tuple[None, list]:
            g.roles = [r for r in g.roles if r.id != role_id]
            for roles in g.members.values():
                if role_id in roles:
                    roles.remove(role_id)
            return None, [("GUILD_ROLE_DELETE", {"guild_id": str(g.id), "role_id": str(role_id)})]

        self._change(guild_id, mutate)

    def delete_role(self, guild_id: int, role_id: int) -> None:
        """See ``role_delete``."""
        self.role_delete(guild_id, role_id)

    # --- channels ---------------------------------------------------------------------------
    def channel_create(self, guild_id: int, name: str, *, type: int = 0) -> FakeChannel:
        """An admin creates a channel (0 text, 2 voice, 4 category): CHANNEL_CREATE."""

        def mutate(g: FakeGuild) -> tuple[FakeChannel, list]:
            channel = FakeChannel(id=next_snowflake(), name=name, type=type, position=len(g.channels))
            g.channels.append(channel)
            return channel, [("CHANNEL_CREATE", payloads.channel(channel, g.id))]

        return self._change(guild_id, mutate)

    def channel_update(self, guild_id: int, channel_id: int, *, name: str) -> None:
        """An admin renames a channel: CHANNEL_UPDATE."""

        def mutate(g: FakeGuild) -> tuple[None, list]:
            channel = g.channel(channel_id)
            channel.name = name
            return None, [("CHANNEL_UPDATE", payloads.channel(channel, g.id))]

        self._change(guild_id, mutate)

    def channel_delete(self, guild_id: int, channel_id: int) -> None:
        """An admin deletes a channel: CHANNEL_DELETE; posting there then gets 10003 Unknown Channel."""

        def mutate(g: FakeGuild) -> tuple[None, list]:
            channel = g.channel(channel_id)
            g.channels = [c for c in g.channels if c.id != channel_id]
            return None, [("CHANNEL_DELETE", payloads.channel(channel, g.id))]

        self._change(guild_id, mutate)
