"""A protocol-level fake Discord on 127.0.0.1 that the real discord.py talks to unmodified.

REST lives under ``/api/v10`` and a websocket gateway at ``/``; both run on the fake's own
event loop in a daemon thread, and :class:`FakeDiscord`'s methods are synchronous and
thread-safe, so a test drives it while the bot runs in another thread or process::

    guild = FakeGuild.typical(guild_id=GUILD, bot_user=bot, members=[alice], admin_ids=[alice.id])
    with FakeDiscord(guilds=[guild], bot_user=bot) as fake:
        # in-process: BotThread(fake, make_bot) (points discord.py at the fake);
        # subprocess: env = os.environ | fake.env(); manage.py runbot
        fake.wait_for_ready_sent(10)
        fake.send_message(GUILD, guild.text_channel.id, alice.id, "!!ping")
        fake.wait_for(lambda: fake.messages)

Modules: ``models`` (dataclasses, permission bits, snowflakes), ``payloads`` (JSON
builders), ``state`` (store and recordings), ``responses`` (REST plumbing), ``routes_core``
and ``routes_apps`` (REST endpoints), ``rest`` (dispatcher and catch-all), ``commands``
(command registration and slash invocations), ``gateway`` (websocket sessions),
``server`` (the facade), ``world`` (members joining, leaving and renamed, guild, role and
channel changes, each with its gateway event: ``fake.member_join(guild_id, user, roles=…)``,
``fake.member_leave(…)``, ``fake.member_update(…, nick=…)``, ``fake.guild_update(…, name=…)``,
``fake.role_create/role_update/role_delete``, ``fake.channel_create/channel_update/channel_delete``),
``shards`` (guild ids per shard, who got what), ``botthread`` (in-process bot runner).
REST also answers ``GET /guilds/{g}/members/{u}`` and ``GET /guilds/{g}/members?limit=&after=``
(paged by user id, like Discord), under the same rate limits as every other route.
"""

from .botthread import BotThread, pointed_at
from .models import (
    ADMINISTRATOR,
    EVERYONE_PERMISSIONS,
    MANAGE_GUILD,
    MANAGE_ROLES,
    FakeChannel,
    FakeGuild,
    FakeRole,
    FakeUser,
    next_snowflake,
)
from .server import FakeDiscord

__all__ = [
    "ADMINISTRATOR",
    "EVERYONE_PERMISSIONS",
    "MANAGE_GUILD",
    "MANAGE_ROLES",
    "BotThread",
    "FakeChannel",
    "FakeDiscord",
    "FakeGuild",
    "FakeRole",
    "FakeUser",
    "next_snowflake",
    "pointed_at",
]
