"""Reads of the directory: names for a page of ids in one query, and ids for a name.

``directory_names`` answers every id a page shows (guilds, roles, channels, members) with
one UNION query that probes the unique indexes, so a list costs one query for its names
however many rows it has. The ``*_ids_named`` look-ups turn a typed name into ids through
the ``(guild_id, *_key)`` indexes: a prefix of the case-folded name is a range on the key
(``key >= p AND key < p + U+10FFFF``), which a B-tree index serves on both engines and in
any collation, unlike ``LIKE``.
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass, field

from django.db.models import CharField, F, IntegerField, Q, QuerySet, Value

from guilds.models import Channel, Guild, Member, Role, name_key

MAX_MATCHES = 200  # ids a name search hands on to the filter (an IN list)
PREFIX_END = "\U0010ffff"


def member_label(username: str, global_name: str = "", nick: str = "", *, left: bool = False) -> str:
    """ "Alice (@alice)": the name shown in the guild, then the unique @name."""
    if not username:
        return ""
    shown = nick or global_name or username
    return f"{shown} (@{username})" + (", left" if left else "")


@dataclass
class Names:
    """Labels for ids; a missing id is the empty string (the page shows the id alone)."""

    guilds: dict[int, str] = field(default_factory=dict)
    roles: dict[int, str] = field(default_factory=dict)
    channels: dict[int, str] = field(default_factory=dict)
    members: dict[tuple[int, int], str] = field(default_factory=dict)

    def guild(self, guild_id: int | None) -> str:
        return self.guilds.get(guild_id or 0, "")

    def role(self, role_id: int | None) -> str:
        return self.roles.get(role_id or 0, "")

    def channel(self, channel_id: int | None) -> str:
        return self.channels.get(channel_id or 0, "")

    def member(self, guild_id: int | None, user_id: int | None) -> str:
        return self.members.get((guild_id or 0, user_id or 0), "")


GUILD, ROLE, CHANNEL, MEMBER = 0, 1, 2, 3


def _columns(qs: QuerySet, kind: int, id_field: str, first: str, second: str = "", third: str = "", gone: str = "") -> QuerySet:
    """The UNION's common shape: kind, guild id, id, three name parts, and when it went away."""
    blank = Value("", output_field=CharField())
    return qs.annotate(
        k=Value(kind, output_field=IntegerField()),
        a=F("guild_id"),
        b=F(id_field),
        n1=F(first),
        n2=F(second) if second else blank,
        n3=F(third) if third else blank,
        g=F(gone),
    ).values_list("k", "a", "b", "n1", "n2", "n3", "g")


def directory_names(
    *,
    guild_ids: Iterable[int | None] = (),
    role_ids: Iterable[int | None] = (),
    channel_ids: Iterable[int | None] = (),
    members: Iterable[tuple[int | None, int | None]] = (),
) -> Names:
    """The labels of these ids ("My Server", "@Booster", "#general", "Alice (@alice)") in one query."""
    guild_set = {g for g in guild_ids if g}
    role_set = {r for r in role_ids if r}
    channel_set = {c for c in channel_ids if c}
    by_guild: dict[int, set[int]] = {}
    for guild_id, user_id in members:
        if guild_id and user_id:
            by_guild.setdefault(guild_id, set()).add(user_id)
    parts: list[QuerySet] = []
    if guild_set:
        parts.append(_columns(Guild.objects.filter(guild_id__in=guild_set), GUILD, "guild_id", "name", gone="left_at"))
    if role_set:
        parts.append(_columns(Role.objects.filter(role_id__in=role_set), ROLE, "role_id", "name", gone="deleted_at"))
    if channel_set:
        parts.append(
            _columns(Channel.objects.filter(channel_id__in=channel_set), CHANNEL, "channel_id", "name", gone="deleted_at")
        )
    if by_guild:
        wanted = Q()
        for guild_id, user_ids in by_guild.items():
            wanted |= Q(guild_id=guild_id, user_id__in=user_ids)  # the (guild_id, user_id) unique index
        parts.append(
            _columns(Member.objects.filter(wanted), MEMBER, "user_id", "username", "global_name", "nick", gone="left_at")
        )
    names = Names()
    if not parts:
        return names
    query = parts[0].union(*parts[1:], all=True) if len(parts) > 1 else parts[0]
    for kind, guild_id, item_id, first, second, third, gone in query:
        if kind == MEMBER:
            names.members[(guild_id, item_id)] = member_label(first, second, third, left=gone is not None)
        elif not first:
            continue
        elif kind == GUILD:
            names.guilds[item_id] = first + (" (bot removed)" if gone else "")
        elif kind == ROLE:
            names.roles[item_id] = ("@" if not first.startswith("@") else "") + first + (" (deleted)" if gone else "")
        else:
            names.channels[item_id] = f"#{first}" + (" (deleted)" if gone else "")
    return names


def _prefix(field_name: str, text: str) -> Q:
    key = name_key(text.lstrip("@#"))
    return Q(**{f"{field_name}__gte": key, f"{field_name}__lt": key + PREFIX_END})


def guild_ids_named(text: str) -> list[int]:
    """Guilds whose name starts with ``text`` (any case): the ``name_key`` index."""
    return list(
        Guild.objects.filter(_prefix("name_key", text)).order_by("name_key").values_list("guild_id", flat=True)[:MAX_MATCHES]
    )


def role_ids_named(*, guild_ids: Iterable[int], text: str) -> list[int]:
    """Roles in these guilds whose name starts with ``text`` (``@`` optional): ``directory_role_name``."""
    wanted = _by_guild(guild_ids, "name_key", text)
    return list(Role.objects.filter(wanted).values_list("role_id", flat=True)[:MAX_MATCHES]) if wanted else []


def channel_ids_named(*, guild_ids: Iterable[int], text: str) -> list[int]:
    """Channels in these guilds whose name starts with ``text`` (``#`` optional): ``directory_channel_name``."""
    wanted = _by_guild(guild_ids, "name_key", text)
    return list(Channel.objects.filter(wanted).values_list("channel_id", flat=True)[:MAX_MATCHES]) if wanted else []


def member_ids_named(*, guild_ids: Iterable[int], text: str) -> list[int]:
    """Members of these guilds whose @name, display name or nickname starts with ``text``.

    Three index probes per guild (``directory_member_username``, ``_global``, ``_nick``).
    """
    wanted = Q()
    for guild_id in set(guild_ids):
        for column in ("username", "global_key", "nick_key"):
            wanted |= Q(guild_id=guild_id) & _prefix(column, text)
    if not wanted:
        return []
    return list(Member.objects.filter(wanted).values_list("user_id", flat=True).distinct()[:MAX_MATCHES])


def _by_guild(guild_ids: Iterable[int], column: str, text: str) -> Q:
    wanted = Q()
    for guild_id in set(guild_ids):
        wanted |= Q(guild_id=guild_id) & _prefix(column, text)
    return wanted


def members_left(*, guild_id: int, user_ids: Iterable[int]) -> set[int]:
    """Which of these members have left the guild (the ``directory_member_left`` partial index)."""
    return set(
        Member.objects.filter(guild_id=guild_id, user_id__in=list(user_ids), left_at__isnull=False).values_list(
            "user_id", flat=True
        )
    )
