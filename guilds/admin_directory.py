"""Admin for the directory of guilds, roles, channels and members: read-only, the bot writes it.

Lists search by id or by the start of a name through the directory's indexes; roles,
channels and members need the guild (its id or name) first, like every big list.
"""

from __future__ import annotations

from django.contrib import admin

from config.admin_tables import LargeTableAdmin, SearchKey
from config.replicas import LagTolerantLists
from guilds.admin_names import GUILD, NamedColumns, guild_names, named
from guilds.models import Channel, Guild, Member, Role
from guilds.selectors import channel_ids_named, member_ids_named, role_ids_named

GUILD_KEY = SearchKey("guild_id", names=guild_names)


class DirectoryAdmin(NamedColumns, LagTolerantLists, LargeTableAdmin):
    """Rows the bot keeps in step with Discord: nothing to add, change or delete here."""

    guild = named("guild_id", GUILD)

    def has_add_permission(self, request):
        return False

    def has_change_permission(self, request, obj=None):
        return False

    def has_delete_permission(self, request, obj=None):
        return False


@admin.register(Guild)
class GuildAdmin(DirectoryAdmin):
    list_display = ("name", "guild_id", "left_at", "updated_at")
    search_keys = {"guild": GUILD_KEY}
    readonly_fields = ("guild_id", "name", "left_at", "updated_at")


def _in_guilds(resolve):
    return lambda guild_ids, text: resolve(guild_ids=guild_ids or (), text=text)


@admin.register(Role)
class RoleAdmin(DirectoryAdmin):
    list_display = ("__str__", "role_id", "guild", "position", "deleted_at")
    search_keys = {"guild": GUILD_KEY, "role": SearchKey("role_id", names=_in_guilds(role_ids_named))}
    readonly_fields = ("guild", "guild_id", "role_id", "name", "position", "deleted_at", "updated_at")


@admin.register(Channel)
class ChannelAdmin(DirectoryAdmin):
    list_display = ("__str__", "channel_id", "guild", "kind", "deleted_at")
    search_keys = {"guild": GUILD_KEY, "channel": SearchKey("channel_id", names=_in_guilds(channel_ids_named))}
    readonly_fields = ("guild", "guild_id", "channel_id", "name", "kind", "deleted_at", "updated_at")


@admin.register(Member)
class MemberAdmin(DirectoryAdmin):
    list_display = ("__str__", "user_id", "guild", "bot", "joined_at", "left_at", "seen_at")
    search_keys = {"guild": GUILD_KEY, "member": SearchKey("user_id", names=_in_guilds(member_ids_named))}
    # A guild's members by user id: the (guild_id, user_id) unique index.
    scoped_ordering = ("guild_id", "user_id")
    readonly_fields = (
        "guild",
        "guild_id",
        "user_id",
        "username",
        "global_name",
        "nick",
        "bot",
        "joined_at",
        "left_at",
        "seen_at",
        "updated_at",
    )
