"""Sharding seen from the fake's side: guild ids that land on chosen shards, and which shard got what.

The gateway already routes by Discord's formula (``shard_of``: ``(guild_id >> 22) %
shard_count``): a session that IDENTIFYs with ``shard: [id, count]`` gets READY and the
GUILD_CREATEs of its guilds only, and each guild's events go only to the sessions whose
shard covers it. These read-outs let a test check that from the outside: a dispatch
counts as delivered to a shard once it was written to that shard's socket (a session
whose process was killed keeps a history nobody reads, which is not a delivery).
"""

from __future__ import annotations

import json
from dataclasses import dataclass

from .models import shard_of
from .server import FakeDiscord

SNOWFLAKE_BASE = 1_300_000_000_000  # the timestamp part of the ids made here (ms since Discord's epoch)


def guild_ids_on_shards(shard_count: int, per_shard: int, *, low_bits: int = 1) -> list[int]:
    """``shard_count * per_shard`` guild ids, shard by shard in turn (shard 0, 1, …, 0, 1, …)."""
    ids = [((SNOWFLAKE_BASE + n) << 22) | low_bits for n in range(shard_count * per_shard)]
    assert [shard_of(i, shard_count) for i in ids] == [n % shard_count for n in range(len(ids))]
    return ids


@dataclass(frozen=True)
class SessionView:
    """One gateway session as a test sees it."""

    id: str
    shard: tuple[int, int] | None
    alive: bool
    attached: bool
    connection: int | None  # id() of the socket it is on; a reconnect or resume changes it
    seq: int
    sent: int


def sessions(fake: FakeDiscord) -> list[SessionView]:
    """Every session the gateway has opened, oldest first."""

    async def read() -> list[SessionView]:
        return [
            SessionView(
                id=s.id,
                shard=s.shard,
                alive=s.alive,
                attached=s.conn is not None,
                connection=None if s.conn is None else id(s.conn),
                seq=s.seq,
                sent=s.sent,
            )
            for s in fake.gateway.sessions.values()
        ]

    return fake._call(read())


def shard_sessions(fake: FakeDiscord, shard_id: int) -> list[SessionView]:
    """The sessions that identified as ``shard_id`` (of any count)."""
    return [s for s in sessions(fake) if s.shard is not None and s.shard[0] == shard_id]


def deliveries(fake: FakeDiscord, event: str = "MESSAGE_CREATE") -> dict[str, list[int]]:
    """For each dispatched ``event`` written to a socket: the shard ids it went to (one per session).

    Keyed by the payload's ``id`` (a message's or an interaction's). Reads the sessions'
    replay histories, so it sees the last HISTORY_LIMIT events of each session.
    """

    async def read() -> dict[str, list[int]]:
        found: dict[str, list[int]] = {}
        for s in fake.gateway.sessions.values():
            for seq, text in list(s.history):
                if seq > s.sent:
                    continue  # kept for a resume that never came
                frame = json.loads(text)
                if frame.get("t") == event:
                    found.setdefault(str(frame["d"].get("id")), []).append((s.shard or (0, 1))[0])
        return found

    return fake._call(read())
