"""The bot's directory buffer: the newest names it saw, written in batches.

The cog (``bots.cogs.directory``) puts what each event shows here with a dict update (no
await, no query); ``flush`` hands everything pending to ``directory_record`` every few
seconds, or sooner once ``FLUSH_ROWS`` are waiting, and on shutdown.

"Only when something changed since it was last written": each written value leaves a
31-bit fingerprint in a fixed table of ``FINGERPRINT_SLOTS`` slots, indexed by the key's
hash. A member whose names are what was last written for them is skipped on the hot path,
so a guild's chatter costs nothing until someone renames. The table is lossy on purpose:
two keys sharing a slot only cause an extra (idempotent) write, and its size does not
grow with the guild (50,000 members or 5 million: at most 512 KiB), which a per-member dict would.
"""

from __future__ import annotations

import ctypes
import logging
import mmap
import time
from collections.abc import Callable
from itertools import islice
from typing import Any

from django.utils import timezone

from bots.db import call
from guilds.services.directory import (
    ChannelSeen,
    DirectoryBatch,
    Gone,
    GuildSeen,
    MemberLeft,
    MemberSeen,
    RoleSeen,
    Roster,
    directory_record,
)

logger = logging.getLogger(__name__)

FLUSH_ROWS = 500  # pending rows that make the next loop turn flush at once; members per transaction
MAX_BATCHES_PER_FLUSH = 100
MAX_PENDING = 50_000  # while the database is away: keep this many, drop the rest (seen again later)
FINGERPRINT_SLOTS = 1 << 17
# A member seen again after this long is written again, so ``seen_at`` stays roughly right.
SEEN_REFRESH_SECONDS = 3600
# A big flush builds its rows and SQL (a few MiB for thousands of members) and frees them; glibc
# keeps that heap, which then counts as the bot's memory for good, so hand it back after one.
TRIM_AFTER_ROWS = 100


def _fingerprint(key: object, value: object) -> int:
    """31 bits of the hash of what was written for ``key``, never 0 (0: nothing written)."""
    return (hash((key, value)) & 0x7FFFFFFF) or 1


def return_freed_memory() -> None:
    """Give freed heap back to the system (glibc's malloc_trim; nothing elsewhere)."""
    try:
        ctypes.CDLL(None).malloc_trim(0)
    except (AttributeError, OSError):
        pass


class DirectoryBuffer:
    """Pending directory rows keyed by what they describe; the newest value wins."""

    def __init__(self, record: Callable[..., int] = directory_record) -> None:
        self._record = record
        self.guilds: dict[int, GuildSeen] = {}
        self.roles: dict[int, RoleSeen] = {}
        self.channels: dict[int, ChannelSeen] = {}
        self.rosters: dict[int, Roster] = {}
        self.members: dict[tuple[int, int], MemberSeen | MemberLeft] = {}
        self.gone: dict[tuple[str, int], Gone] = {}
        # 31 bits of each hash: a false "unchanged" is a one-in-two-billion chance per change. The
        # table is an anonymous mapping, zero until written: a page of it takes memory only once a
        # member whose slot is on it has been written, so an idle bot holds none of it.
        self._fingerprints = memoryview(mmap.mmap(-1, 4 * FINGERPRINT_SLOTS)).cast("i")
        self.flushes = 0  # batches written (tests and benches count them)
        self.rows_written = 0
        self.dropped = 0

    # --- the hot path: dict updates only ------------------------------------------------------
    def _fresh(self, key: object, value: object) -> bool:
        """Whether ``value`` differs from what was last written for ``key`` (or may)."""
        return self._fingerprints[hash(key) % FINGERPRINT_SLOTS] != _fingerprint(key, value)

    def member_seen(self, seen: MemberSeen) -> None:
        key = (seen.guild_id, seen.user_id)
        hour = int(time.time() // SEEN_REFRESH_SECONDS)
        if key in self.members or self._fresh(key, (seen, hour)):
            self._put(self.members, key, seen)

    def member_left(self, left: MemberLeft) -> None:
        self._put(self.members, (left.guild_id, left.user_id), left)

    def guild_seen(self, seen: GuildSeen) -> None:
        self.gone.pop(("guild", seen.guild_id), None)
        if self._fresh(("g", seen.guild_id), seen):
            self._put(self.guilds, seen.guild_id, seen)

    def role_seen(self, seen: RoleSeen) -> None:
        if ("role", seen.role_id) not in self.gone and self._fresh(("r", seen.role_id), seen):
            self._put(self.roles, seen.role_id, seen)

    def channel_seen(self, seen: ChannelSeen) -> None:
        if ("channel", seen.channel_id) not in self.gone and self._fresh(("c", seen.channel_id), seen):
            self._put(self.channels, seen.channel_id, seen)

    def roster(self, roster: Roster) -> None:
        self.rosters[roster.guild_id] = roster

    def went_away(self, kind: str, item_id: int) -> None:
        """A guild the bot left, or a role or channel deleted."""
        tables: dict[str, dict[int, Any]] = {"guild": self.guilds, "role": self.roles, "channel": self.channels}
        tables[kind].pop(item_id, None)
        self._fingerprints[hash((kind[0], item_id)) % FINGERPRINT_SLOTS] = 0
        self.gone[(kind, item_id)] = Gone(kind, item_id)

    def _put(self, table: dict, key: object, value: object) -> None:
        if key not in table and self.pending >= MAX_PENDING:
            self.dropped += 1
            return
        table[key] = value

    @property
    def pending(self) -> int:
        return len(self.members) + len(self.guilds) + len(self.roles) + len(self.channels) + len(self.gone)

    # --- flushing (in Django's sync thread) --------------------------------------------------
    def take(self, limit: int | None = None) -> tuple[DirectoryBatch, dict]:
        """What is pending (at most ``limit``, by default ``FLUSH_ROWS``, members, the oldest first)
        as one batch, and what to remember once it is written."""
        limit = limit or FLUSH_ROWS
        if len(self.members) > limit:
            members = list(islice(self.members.items(), limit))
            for key, _ in members:
                del self.members[key]
            rest = self.members
        else:
            members, rest = list(self.members.items()), {}
        batch = DirectoryBatch(
            guilds=list(self.guilds.values()),
            roles=list(self.roles.values()),
            channels=list(self.channels.values()),
            rosters=list(self.rosters.values()),
            members=[m for _, m in members if isinstance(m, MemberSeen)],
            departures=[m for _, m in members if isinstance(m, MemberLeft)],
            gone=list(self.gone.values()),
        )
        hour = int(time.time() // SEEN_REFRESH_SECONDS)
        marks: dict[object, object] = {("g", g.guild_id): g for g in batch.guilds}
        marks |= {("r", r.role_id): r for r in batch.roles}
        marks |= {("c", c.channel_id): c for c in batch.channels}
        marks |= {key: (m, hour) for key, m in members if isinstance(m, MemberSeen)}
        for key, m in members:
            if isinstance(m, MemberLeft):
                self._fingerprints[hash(key) % FINGERPRINT_SLOTS] = 0  # seen again after leaving: write it
        self.guilds, self.roles, self.channels, self.rosters, self.members, self.gone = {}, {}, {}, {}, rest, {}
        return batch, marks

    def put_back(self, batch: DirectoryBatch) -> None:
        """A batch that failed to write goes back under what arrived since (which is newer)."""
        for g in batch.guilds:
            self.guilds.setdefault(g.guild_id, g)
        for r in batch.roles:
            self.roles.setdefault(r.role_id, r)
        for c in batch.channels:
            self.channels.setdefault(c.channel_id, c)
        for roster in batch.rosters:
            self.rosters.setdefault(roster.guild_id, roster)
        for seen in batch.members:
            self.members.setdefault((seen.guild_id, seen.user_id), seen)
        for left in batch.departures:
            self.members.setdefault((left.guild_id, left.user_id), left)
        for gone in batch.gone:
            self.gone.setdefault((gone.kind, gone.id), gone)

    async def flush(self, *, everything: bool = False) -> int:
        """Write what is pending, ``FLUSH_ROWS`` members per transaction, until fewer than that wait
        (``everything``: until nothing does); on failure keep the rest for the next flush (and raise).

        Each batch is taken on the event loop (where the listeners write), written in Django's
        sync thread, and its fingerprints recorded back on the loop. A burst is written in short
        transactions (other writers of a SQLite file wait less) with a bounded batch in memory.
        """
        written = 0
        for _ in range(MAX_BATCHES_PER_FLUSH):
            batch, marks = self.take()
            if not len(batch) and not batch.rosters:
                break
            try:
                count = await call(self._record, batch=batch, at=timezone.now())
            except Exception:
                self.put_back(batch)
                raise
            for key, value in marks.items():
                self._fingerprints[hash(key) % FINGERPRINT_SLOTS] = _fingerprint(key, value)
            self.flushes += 1
            self.rows_written += count
            written += count
            if not everything and len(self.members) < FLUSH_ROWS:
                break
        if written >= TRIM_AFTER_ROWS:
            return_freed_memory()
        return written
