"""Where bots.ratelimit keeps its counts: Redis (every process) or this process's memory.

Both run the same algorithm; Redis runs it as two Lua scripts, so that a check and the
count it leads to are one atomic step for all processes. Times are Redis's clock there
(one clock for every machine), ``time.time()`` here.
"""

from __future__ import annotations

import collections
import math
import time
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from bots.ratelimit import Answer, Ticket

DISCOVERY_MS = 2000
POLL_MS = 5
BUCKET_TTL_MS = 600_000
GLOBAL_WINDOW_MS = 1000

# KEYS: none (the bucket's key depends on the route's hash, read inside: one Redis, not Cluster).
# ARGV: prefix, route, major, applies, member, global_limit, margin_ms
ACQUIRE = """
local t = redis.call('TIME')
local now = tonumber(t[1]) * 1000 + math.floor(tonumber(t[2]) / 1000)
local prefix, route, major, applies, member = ARGV[1], ARGV[2], ARGV[3], ARGV[4] == '1', ARGV[5]
local limit, margin, window = tonumber(ARGV[6]), tonumber(ARGV[7]), 1000
if applies then
  local block = redis.call('PTTL', prefix .. 'gblock')
  if block > 0 then return {block, '', ''} end
end
local wait, discovery = 0, ''
local hash = redis.call('GET', prefix .. 'r:' .. route)
local key = hash and (prefix .. 'b:' .. hash .. ':' .. major) or nil
local state = key and redis.call('HMGET', key, 'limit', 'remaining', 'reset_at', 'window') or {false}
-- first requests in flight, per major parameter: each may land in any of its buckets
local reserved_key = prefix .. 'dm:' .. major
redis.call('ZREMRANGEBYSCORE', reserved_key, '-inf', now)
if not state[1] then
  -- nobody has seen this bucket: one request goes to learn it, the others wait for its answer
  discovery = hash and (prefix .. 'd:b:' .. hash .. ':' .. major) or (prefix .. 'd:r:' .. route .. ':' .. major)
  if not redis.call('SET', discovery, member, 'NX', 'PX', 2000) then
    wait, discovery = 5, ''
  end
else
  local remaining, reset_at = tonumber(state[2]), tonumber(state[3])
  if now >= reset_at + margin then
    -- a new window; requests still on their way may land in it, so they count against it
    redis.call('ZREMRANGEBYSCORE', key .. ':out', '-inf', now)
    remaining = tonumber(state[1]) - redis.call('ZCARD', key .. ':out')
    reset_at = now + tonumber(state[4]) + margin
    redis.call('HSET', key, 'remaining', remaining, 'reset_at', reset_at)
  end
  local reserved = redis.call('ZCARD', reserved_key)
  if remaining <= 0 then
    wait = reset_at + margin - now
  elseif remaining <= reserved then
    wait = 5  -- keep a slot for each first request in flight until its answer says where it went
  end
end
local g = prefix .. 'g'
if applies then
  redis.call('ZREMRANGEBYSCORE', g, '-inf', now - window - margin)
  if redis.call('ZCARD', g) >= limit then
    local oldest = redis.call('ZRANGE', g, 0, 0, 'WITHSCORES')
    wait = math.max(wait, tonumber(oldest[2]) + window + margin - now)
  end
end
if wait > 0 then
  if discovery ~= '' then redis.call('DEL', discovery) end
  return {math.max(1, wait), '', ''}
end
local counted = ''
if state[1] then
  redis.call('HINCRBY', key, 'remaining', -1)
  redis.call('ZADD', key .. ':out', now + 5000, member)
  redis.call('PEXPIRE', key .. ':out', 10000)
  counted = key
end
if discovery ~= '' then
  redis.call('ZADD', reserved_key, now + 2000, member)
  redis.call('PEXPIRE', reserved_key, 2000)
end
if applies then
  redis.call('ZADD', g, now, member)
  if redis.call('PTTL', g) < 2 * window + margin then redis.call('PEXPIRE', g, 2 * window + margin) end
end
return {0, discovery, counted}
"""

# ARGV: prefix, route, major, discovery, member, counted (the bucket key granted from, or ''), answered (0/1),
# bucket, limit, remaining, reset_after_ms, global_block_ms
OBSERVE = """
local t = redis.call('TIME')
local now = tonumber(t[1]) * 1000 + math.floor(tonumber(t[2]) / 1000)
local prefix, route, major, discovery, member, counted = ARGV[1], ARGV[2], ARGV[3], ARGV[4], ARGV[5], ARGV[6]
if counted ~= '' then redis.call('ZREM', counted .. ':out', member) end
local discovering = discovery ~= ''
if discovering then redis.call('ZREM', prefix .. 'dm:' .. major, member) end
if ARGV[7] == '1' then
  local hash, limit, remaining = ARGV[8], tonumber(ARGV[9]), tonumber(ARGV[10])
  local reset_after, block = tonumber(ARGV[11]), tonumber(ARGV[12])
  if block > 0 then redis.call('SET', prefix .. 'gblock', '1', 'PX', block) end
  if hash ~= '' then
    redis.call('SET', prefix .. 'r:' .. route, hash, 'EX', 86400)
    local key = prefix .. 'b:' .. hash .. ':' .. major
    local reset_at = now + reset_after
    local cur = redis.call('HMGET', key, 'remaining', 'reset_at', 'window')
    if not cur[1] then
      redis.call('HSET', key, 'limit', limit, 'remaining', remaining, 'reset_at', reset_at, 'window', reset_after)
    else
      local cur_remaining, cur_reset, cur_window = tonumber(cur[1]), tonumber(cur[2]), tonumber(cur[3])
      -- a first request (of a route or a bucket) that another one's answer beat here took a slot never counted
      if discovering then cur_remaining = cur_remaining - 1 end
      local half = math.max(cur_window, reset_after) / 2
      if reset_at > cur_reset + half then
        -- the server is in a later window than the one counted here: take its numbers
        redis.call('HSET', key, 'remaining', remaining, 'reset_at', reset_at)
      elseif reset_at + half >= cur_reset then
        -- the same window: the lowest remaining and the latest reset win
        redis.call('HSET', key, 'remaining', math.min(cur_remaining, remaining), 'reset_at', math.max(cur_reset, reset_at))
      end
      -- else: a late answer from an earlier window, nothing to learn
      redis.call('HSET', key, 'limit', limit, 'window', math.max(cur_window, reset_after))
    end
    redis.call('PEXPIRE', key, 600000)
  end
end
-- count the request from its answer on: it reached Discord somewhere before that, never after
redis.call('ZADD', prefix .. 'g', 'XX', now, member)
if discovery ~= '' then redis.call('DEL', discovery) end
return 1
"""


def _text(value: object) -> str:
    return value.decode() if isinstance(value, bytes) else str(value)


class RedisBackend:
    """The counts in Redis, shared by every process using the same Redis and key prefix."""

    errors: tuple[type[BaseException], ...] = (OSError, TimeoutError)

    def __init__(self, url: str, *, prefix: str, global_limit: int, margin_ms: int) -> None:
        # Imported here: a bot without Redis (the embedded default) never loads redis-py, about
        # 3 MiB of its resident memory (docs/performance.md, "Bot memory").
        import redis.asyncio as aioredis
        import redis.exceptions

        self.errors = (redis.exceptions.RedisError, OSError, TimeoutError)
        # Short timeouts: a Redis outage must turn into the in-process fallback, not a stalled request.
        self.client = aioredis.Redis.from_url(url, socket_timeout=0.5, socket_connect_timeout=0.5)
        self.prefix = prefix
        self.global_limit = global_limit
        self.margin_ms = margin_ms
        self._acquire = self.client.register_script(ACQUIRE)
        self._observe = self.client.register_script(OBSERVE)

    def _prefix(self, token_key: str) -> str:
        return f"{self.prefix}:{token_key}:"

    async def acquire(self, token_key: str, route: str, major: str, applies: bool, member: str) -> tuple[int, str, str]:
        args: list[str | int] = [self._prefix(token_key), route, major, int(applies), member, self.global_limit, self.margin_ms]
        wait, discovery, counted = await self._acquire(args=args)
        return int(wait), _text(discovery), _text(counted)

    async def observe(self, token_key: str, ticket: Ticket, answer: Answer | None) -> None:
        args: list[str | int] = [
            self._prefix(token_key),
            ticket.route,
            ticket.major,
            ticket.discovery,
            ticket.member,
            ticket.counted,
        ]
        if answer is None:
            args += [0, "", 0, 0, 0, 0]
        else:
            args += [1, answer.bucket, answer.limit, answer.remaining, answer.reset_after_ms, answer.global_block_ms]
        await self._observe(args=args)

    async def close(self) -> None:
        await self.client.aclose()


class LocalBackend:
    """The same counts in this process's memory (no Redis, or Redis unreachable)."""

    errors: tuple[type[BaseException], ...] = ()

    def __init__(self, *, global_limit: int, margin_ms: int) -> None:
        self.global_limit = global_limit
        self.margin_ms = margin_ms
        self.hits: dict[str, dict[str, float]] = collections.defaultdict(dict)  # token -> request -> when
        self.blocked_until: dict[str, float] = {}
        self.hashes: dict[tuple[str, str], str] = {}
        self.buckets: dict[str, dict[str, float]] = {}
        self.outgoing: dict[str, dict[str, float]] = collections.defaultdict(dict)  # bucket -> request -> expiry
        self.discovering: dict[str, float] = {}
        self.reserved: dict[tuple[str, str], dict[str, float]] = collections.defaultdict(dict)  # first requests in flight

    @staticmethod
    def _now() -> float:
        return time.time() * 1000

    @staticmethod
    def _live(held: dict[str, float], now: float) -> dict[str, float]:
        for member in [m for m, until in held.items() if until <= now]:
            del held[member]
        return held

    async def acquire(self, token_key: str, route: str, major: str, applies: bool, member: str) -> tuple[int, str, str]:
        now, margin = self._now(), self.margin_ms
        if applies and self.blocked_until.get(token_key, 0) > now:
            return math.ceil(self.blocked_until[token_key] - now), "", ""
        wait, discovery = 0.0, ""
        bucket_hash = self.hashes.get((token_key, route))
        key = f"{token_key}:{bucket_hash}:{major}" if bucket_hash else ""
        state = self.buckets.get(key) if key else None
        reserved = self._live(self.reserved[(token_key, major)], now)
        if state is None:
            discovery = f"{'b' if bucket_hash else 'r'}:{token_key}:{bucket_hash or route}:{major}"
            if self.discovering.get(discovery, 0) > now:
                wait, discovery = POLL_MS, ""
            else:
                self.discovering[discovery] = now + DISCOVERY_MS
        else:
            if now >= state["reset_at"] + margin:
                outgoing = len(self._live(self.outgoing[key], now))
                state["remaining"], state["reset_at"] = state["limit"] - outgoing, now + state["window"] + margin
            if state["remaining"] <= 0:
                wait = state["reset_at"] + margin - now
            elif state["remaining"] <= len(reserved):
                wait = POLL_MS
        hits = self.hits[token_key]
        if applies:
            for old in [m for m, at in hits.items() if at <= now - GLOBAL_WINDOW_MS - margin]:
                del hits[old]
            if len(hits) >= self.global_limit:
                wait = max(wait, min(hits.values()) + GLOBAL_WINDOW_MS + margin - now)
        if wait > 0:
            if discovery:
                self.discovering.pop(discovery, None)
            return max(1, math.ceil(wait)), "", ""
        if state is not None:
            state["remaining"] -= 1
            self.outgoing[key][member] = now + 5000
        if discovery:
            reserved[member] = now + DISCOVERY_MS
        if applies:
            hits[member] = now
        return 0, discovery, key if state is not None else ""

    def note_sent(self, token_key: str, member: str) -> None:
        """Count a request another backend let through in this process's global window."""
        now, hits = self._now(), self.hits[token_key]
        for old in [m for m, at in hits.items() if at <= now - GLOBAL_WINDOW_MS - self.margin_ms]:
            del hits[old]
        hits[member] = now

    async def observe(self, token_key: str, ticket: Ticket, answer: Answer | None) -> None:
        now = self._now()
        discovering = bool(ticket.discovery)
        if discovering:
            self.reserved[(token_key, ticket.major)].pop(ticket.member, None)
        if ticket.counted:
            self.outgoing[ticket.counted].pop(ticket.member, None)
        if ticket.member in self.hits[token_key]:
            self.hits[token_key][ticket.member] = now  # counted from its answer on, as in Redis
        if answer is not None:
            if answer.global_block_ms > 0:
                self.blocked_until[token_key] = now + answer.global_block_ms
            if answer.bucket:
                self.hashes[(token_key, ticket.route)] = answer.bucket
                self._learn(f"{token_key}:{answer.bucket}:{ticket.major}", answer, now, discovering)
        if ticket.discovery:
            self.discovering.pop(ticket.discovery, None)

    def _learn(self, key: str, answer: Answer, now: float, discovering: bool) -> None:
        reset_at = now + answer.reset_after_ms
        state = self.buckets.get(key)
        if state is None:
            self.buckets[key] = {
                "limit": answer.limit,
                "remaining": answer.remaining,
                "reset_at": reset_at,
                "window": answer.reset_after_ms,
            }
            return
        if discovering:  # a first request that another one's answer beat here took a slot never counted
            state["remaining"] -= 1
        half = max(state["window"], answer.reset_after_ms) / 2
        if reset_at > state["reset_at"] + half:
            state["remaining"], state["reset_at"] = answer.remaining, reset_at
        elif reset_at + half >= state["reset_at"]:
            state["remaining"] = min(state["remaining"], answer.remaining)
            state["reset_at"] = max(state["reset_at"], reset_at)
        state["limit"], state["window"] = answer.limit, max(state["window"], answer.reset_after_ms)

    async def close(self) -> None:
        return None
