"""Writes for the directory: what the bot saw of guilds, roles, channels and members, in batches.

The bot buffers what it sees (``bots.directory``) and hands it here every few seconds as
one ``directory_record`` call: each kind is one bulk upsert (INSERT … ON CONFLICT DO
UPDATE on both engines) in one transaction, so a flush of a thousand members costs a
handful of statements, never one per row. Nothing is deleted: a role or channel that goes
away gets ``deleted_at``, a member who leaves ``left_at`` (cleared when they are seen again).
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from datetime import datetime
from itertools import islice

from django.db import transaction
from django.utils import timezone

from config.database import retry_transient
from guilds.models import Channel, Guild, Member, Role, name_key

BATCH_SIZE = 500  # rows per INSERT: SQLite's variable limit is 32,766, and a member row has 13


@dataclass(frozen=True, slots=True)
class GuildSeen:
    guild_id: int
    name: str


@dataclass(frozen=True, slots=True)
class RoleSeen:
    guild_id: int
    role_id: int
    name: str
    position: int = 0


@dataclass(frozen=True, slots=True)
class ChannelSeen:
    guild_id: int
    channel_id: int
    name: str
    kind: int = 0


@dataclass(frozen=True, slots=True)
class Roster:
    """Every role and channel a guild has (from GUILD_CREATE): the others in the directory are gone."""

    guild_id: int
    role_ids: frozenset[int]
    channel_ids: frozenset[int]


@dataclass(frozen=True, slots=True)
class MemberSeen:
    """A member as a message, an interaction or a member event showed them: present in the guild."""

    guild_id: int
    user_id: int
    username: str
    global_name: str = ""
    nick: str = ""
    bot: bool = False
    joined_at: datetime | None = None


@dataclass(frozen=True, slots=True)
class MemberLeft:
    """GUILD_MEMBER_REMOVE: the user (no nickname any more) and when."""

    guild_id: int
    user_id: int
    username: str
    global_name: str = ""
    bot: bool = False


@dataclass(frozen=True, slots=True)
class Gone:
    """A guild the bot was removed from, or a role or channel deleted (``kind``: guild, role, channel)."""

    kind: str
    id: int


@dataclass(frozen=True)
class DirectoryBatch:
    guilds: Sequence[GuildSeen] = ()
    roles: Sequence[RoleSeen] = ()
    channels: Sequence[ChannelSeen] = ()
    rosters: Sequence[Roster] = ()
    members: Sequence[MemberSeen] = ()
    departures: Sequence[MemberLeft] = ()
    gone: Sequence[Gone] = ()

    def __len__(self) -> int:
        return sum(len(part) for part in (self.guilds, self.roles, self.channels, self.members, self.departures, self.gone))


def _cut(text: str | None, size: int) -> str:
    return (text or "")[:size]


@retry_transient()
def directory_record(*, batch: DirectoryBatch, at: datetime | None = None) -> int:
    """Write one flush of the bot's directory buffer; returns the rows written.

    Safe to repeat (every write is an upsert or a conditional update), so a transient
    failure retries the whole batch.
    """
    at = at or timezone.now()
    with transaction.atomic():
        written = _guilds(batch.guilds, at) + _roles(batch.roles, at) + _channels(batch.channels, at)
        written += _members(batch.members, at) + _departures(batch.departures, at)
        for roster in batch.rosters:
            Role.objects.filter(guild_id=roster.guild_id, deleted_at=None).exclude(role_id__in=roster.role_ids).update(
                deleted_at=at, updated_at=at
            )
            Channel.objects.filter(guild_id=roster.guild_id, deleted_at=None).exclude(channel_id__in=roster.channel_ids).update(
                deleted_at=at, updated_at=at
            )
        written += _gone(batch.gone, at)
    return written


def _upsert(model, rows: Iterable, unique: list[str], update: list[str]) -> int:
    """Bulk upserts of ``rows`` (built lazily), ``BATCH_SIZE`` model instances alive at a time."""
    count = 0
    rows = iter(rows)
    while chunk := list(islice(rows, BATCH_SIZE)):
        model.objects.bulk_create(
            chunk, batch_size=BATCH_SIZE, update_conflicts=True, unique_fields=unique, update_fields=[*update, "updated_at"]
        )
        count += len(chunk)
    return count


def _guilds(seen: Iterable[GuildSeen], at: datetime) -> int:
    rows = (
        Guild(guild_id=g.guild_id, name=_cut(g.name, 100), name_key=name_key(g.name), left_at=None, updated_at=at)
        for g in sorted(seen, key=lambda g: g.guild_id)
    )
    return _upsert(Guild, rows, ["guild_id"], ["name", "name_key", "left_at"])


def _roles(seen: Iterable[RoleSeen], at: datetime) -> int:
    rows = (
        Role(
            guild_id=r.guild_id,
            role_id=r.role_id,
            name=_cut(r.name, 100),
            name_key=name_key(r.name),
            position=r.position,
            deleted_at=None,
            updated_at=at,
        )
        for r in sorted(seen, key=lambda r: r.role_id)
    )
    return _upsert(Role, rows, ["role_id"], ["guild_id", "name", "name_key", "position", "deleted_at"])


def _channels(seen: Iterable[ChannelSeen], at: datetime) -> int:
    rows = (
        Channel(
            guild_id=c.guild_id,
            channel_id=c.channel_id,
            name=_cut(c.name, 100),
            name_key=name_key(c.name),
            kind=c.kind,
            deleted_at=None,
            updated_at=at,
        )
        for c in sorted(seen, key=lambda c: c.channel_id)
    )
    return _upsert(Channel, rows, ["channel_id"], ["guild_id", "name", "name_key", "kind", "deleted_at"])


MEMBER_UNIQUE = ["guild_id", "user_id"]


def _members(seen: Iterable[MemberSeen], at: datetime) -> int:
    rows = (
        Member(
            guild_id=m.guild_id,
            user_id=m.user_id,
            username=_cut(m.username, 32),
            global_name=_cut(m.global_name, 32),
            global_key=name_key(m.global_name)[:32],
            nick=_cut(m.nick, 32),
            nick_key=name_key(m.nick)[:32],
            bot=m.bot,
            joined_at=m.joined_at,
            left_at=None,
            seen_at=at,
            updated_at=at,
        )
        for m in sorted(seen, key=lambda m: (m.guild_id, m.user_id))
    )
    fields = ["username", "global_name", "global_key", "nick", "nick_key", "bot", "joined_at", "left_at", "seen_at"]
    return _upsert(Member, rows, MEMBER_UNIQUE, fields)


def _departures(left: Iterable[MemberLeft], at: datetime) -> int:
    rows = (
        Member(
            guild_id=m.guild_id,
            user_id=m.user_id,
            username=_cut(m.username, 32),
            global_name=_cut(m.global_name, 32),
            global_key=name_key(m.global_name)[:32],
            bot=m.bot,
            left_at=at,
            updated_at=at,
        )
        for m in sorted(left, key=lambda m: (m.guild_id, m.user_id))
    )
    # A nickname ends with the membership: cleared, as Discord does on rejoin.
    return _upsert(Member, rows, MEMBER_UNIQUE, ["username", "global_name", "global_key", "bot", "left_at", "nick", "nick_key"])


def _gone(gone: Iterable[Gone], at: datetime) -> int:
    ids: dict[str, list[int]] = {"guild": [], "role": [], "channel": []}
    for item in gone:
        ids[item.kind].append(item.id)
    written = 0
    if ids["guild"]:
        written += Guild.objects.filter(guild_id__in=ids["guild"]).update(left_at=at, updated_at=at)
    if ids["role"]:
        written += Role.objects.filter(role_id__in=ids["role"], deleted_at=None).update(deleted_at=at, updated_at=at)
    if ids["channel"]:
        written += Channel.objects.filter(channel_id__in=ids["channel"], deleted_at=None).update(deleted_at=at, updated_at=at)
    return written
