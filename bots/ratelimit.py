"""Discord's REST rate limits, shared by every process that calls Discord (bot shards and workers).

discord.py keeps Discord's limits per process: it learns each route's bucket from the
``X-RateLimit-*`` headers and waits out 429s, but it never limits the global 50 requests/s
ahead of time, and two processes know nothing of each other's requests. With Redis
configured, every request first asks one Lua script (atomic, one round trip) for a slot:

- **global**: a sliding window of the last second's requests per bot token (interaction
  callbacks and interaction webhooks are outside it, as on Discord); a global 429 blocks
  every process for its ``retry_after``;
- **per bucket**: ``remaining`` and ``reset_at`` per (bucket hash, major parameter), fed
  from each answer's headers (the lowest ``remaining`` of a window wins, a late answer
  from an earlier window is ignored); a bucket no process has seen yet lets one request
  through to learn it and holds the others until its answer (discord.py does the same
  in one process by starting every bucket at a limit of 1).

The hook is an aiohttp ``TraceConfig`` (``Client(http_trace=...)`` / ``HTTPClient(...,
http_trace=...)``): its request-start callback runs before every attempt discord.py makes,
retries included, and its request-end callback sees the answer's headers before
discord.py does. discord.py's own limiter stays underneath.

Without Redis, or while Redis is unreachable, the same algorithm runs in the process's
memory, which follows the process's own requests and answers while Redis serves, so that a
fallback starts from the current second's count: one process behaves as the fleet does,
and several processes fall back to per-process limits (never to none). Redis is tried
again every ``REDIS_RETRY_SECONDS``.
"""

from __future__ import annotations

import asyncio
import hashlib
import logging
import random
import time
import uuid
from dataclasses import dataclass
from types import SimpleNamespace
from typing import Any

import aiohttp
import discord
from django.conf import settings

from bots.ratelimit_backends import LocalBackend, RedisBackend

logger = logging.getLogger(__name__)
MARGIN_MS = 10  # slack on every window: requests are counted from their answer on, so only clock drift is left
JITTER_MS = 5
REDIS_RETRY_SECONDS = 5.0
GLOBAL_EXEMPT = ("interactions", "webhooks")  # Discord: interaction endpoints are not bound to the global limit
MAJOR_AFTER = ("channels", "guilds", "webhooks", "interactions")


def route_of(method: str, path: str) -> tuple[str, str, bool]:
    """(route key, major parameter, whether the global limit applies) for a request path.

    Ids become placeholders except the major parameter (the first channel, guild, webhook
    or interaction id, with a webhook's or interaction's token), which is what Discord
    counts a bucket per.
    """
    parts = path.split("/")
    for i, part in enumerate(parts):  # drop everything up to /api/vN
        if part.startswith("v") and part[1:].isdigit() and i > 0 and parts[i - 1] == "api":
            parts = parts[i + 1 :]
            break
    parts = [p for p in parts if p]
    out: list[str] = []
    major: list[str] = []
    for i, part in enumerate(parts):
        prev = parts[i - 1] if i else ""
        if part.isdigit():
            if not major and prev in MAJOR_AFTER:
                major.append(part)
                out.append("{" + prev + "}")
            else:
                out.append("{id}")
        elif prev == "reactions":
            out.append("{emoji}")
        elif i >= 2 and prev.isdigit() and parts[i - 2] in ("webhooks", "interactions") and major == [prev]:
            major.append(part)
            out.append("{token}")
        else:
            out.append(part)
    applies = not (parts and parts[0] in GLOBAL_EXEMPT)
    return f"{method} /{'/'.join(out)}", "/".join(major), applies


@dataclass
class Ticket:
    """One granted request: what to tell the backend when its answer comes."""

    route: str
    major: str
    discovery: str  # the discovery key this request holds ("" if none)
    member: str  # this request's id in the counts
    counted: str  # the bucket it was counted against ("" while the bucket is unknown)


@dataclass
class Answer:
    """What an answer's headers say about the limits."""

    status: int
    bucket: str
    limit: int
    remaining: int
    reset_after_ms: int
    global_block_ms: int  # > 0 for a global 429


def answer_of(status: int, headers: Any) -> Answer:
    def number(name: str, default: float = 0.0) -> float:
        try:
            return float(headers.get(name, default))
        except (TypeError, ValueError):
            return default

    is_global = status == 429 and (
        headers.get("X-RateLimit-Global", "").lower() == "true" or headers.get("X-RateLimit-Scope") == "global"
    )
    remaining = int(number("X-RateLimit-Remaining"))
    # A 429 with requests left is a sub-limit on one resource (discord.py says the same): it
    # holds back that request only, so the fleet's view of the bucket learns nothing from it.
    learns = "X-RateLimit-Remaining" in headers and not (status == 429 and remaining > 0)
    return Answer(
        status=status,
        bucket=headers.get("X-RateLimit-Bucket", "") if learns else "",
        limit=int(number("X-RateLimit-Limit", 1)),
        remaining=remaining,
        reset_after_ms=int(number("X-RateLimit-Reset-After") * 1000),
        global_block_ms=int(number("Retry-After", 1) * 1000) if is_global else 0,
    )


class SharedRateLimits:
    """The limiter for one event loop; ``trace_config()`` goes to discord.py's HTTP client.

    ``redis_url`` None keeps everything in this process. Call ``close()`` when the client closes.
    """

    def __init__(self, redis_url: str | None, *, prefix: str, global_limit: int, margin_ms: int = MARGIN_MS) -> None:
        self.global_limit = global_limit
        self.margin_ms = margin_ms
        self.local = LocalBackend(global_limit=global_limit, margin_ms=margin_ms)
        self.redis = RedisBackend(redis_url, prefix=prefix, global_limit=global_limit, margin_ms=margin_ms) if redis_url else None
        self._redis_down_until = 0.0
        self.waited_ms = 0  # total time requests were held (for figures)

    def _backend(self) -> LocalBackend | RedisBackend:
        if self.redis is not None and time.monotonic() >= self._redis_down_until:
            return self.redis
        return self.local

    def _redis_failed(self, exc: BaseException) -> None:
        if time.monotonic() >= self._redis_down_until:
            logger.warning("Redis unreachable for Discord rate limits (%s); limiting in this process for now", exc)
        self._redis_down_until = time.monotonic() + REDIS_RETRY_SECONDS

    async def acquire(self, method: str, path: str, token_key: str) -> tuple[Any, Ticket]:
        """Wait until the request may go; return the backend that granted it and its ticket."""
        route, major, applies = route_of(method, path)
        member = uuid.uuid4().hex
        while True:
            backend = self._backend()
            try:
                wait_ms, discovery, counted = await backend.acquire(token_key, route, major, applies, member)
            except backend.errors as exc:
                self._redis_failed(exc)
                continue
            if wait_ms <= 0:
                if backend is not self.local and applies:
                    self.local.note_sent(token_key, member)  # so that a fallback starts from this second's count
                return backend, Ticket(route, major, discovery, member, counted)
            self.waited_ms += wait_ms
            # Spread the waiters a little: a window frees its slots one by one, not all at once.
            await asyncio.sleep((wait_ms + random.uniform(0, JITTER_MS)) / 1000)

    async def observe(self, backend: Any, ticket: Ticket, token_key: str, answer: Answer | None) -> None:
        """Feed an answer's headers (None: no answer came) back to the backend that granted it."""
        try:
            await backend.observe(token_key, ticket, answer)
        except backend.errors as exc:
            self._redis_failed(exc)
        if backend is not self.local:
            # The process's own view stays warm (its buckets, its requests), for a fallback.
            await self.local.observe(token_key, Ticket(ticket.route, ticket.major, "", ticket.member, ""), answer)

    # --- the aiohttp hook -----------------------------------------------------------------
    def trace_config(self) -> aiohttp.TraceConfig:
        trace = aiohttp.TraceConfig()
        trace.on_request_start.append(self._on_start)
        trace.on_request_end.append(self._on_end)
        trace.on_request_exception.append(self._on_exception)
        return trace

    @staticmethod
    def _token_key(headers: Any) -> str:
        auth = headers.get("Authorization", "") if headers is not None else ""
        return hashlib.sha256(auth.encode()).hexdigest()[:16]  # never the token itself

    async def _on_start(self, session: Any, ctx: SimpleNamespace, params: aiohttp.TraceRequestStartParams) -> None:
        ctx.granted = None
        if not str(params.url).startswith(discord.http.Route.BASE):
            return  # the gateway's websocket and the CDN have limits of their own
        token_key = self._token_key(params.headers)
        ctx.granted = (*await self.acquire(params.method, params.url.path, token_key), token_key)

    async def _on_end(self, session: Any, ctx: SimpleNamespace, params: aiohttp.TraceRequestEndParams) -> None:
        if ctx.granted is not None:
            backend, ticket, token_key = ctx.granted
            await self.observe(backend, ticket, token_key, answer_of(params.response.status, params.response.headers))

    async def _on_exception(self, session: Any, ctx: SimpleNamespace, params: aiohttp.TraceRequestExceptionParams) -> None:
        if getattr(ctx, "granted", None) is not None:
            backend, ticket, token_key = ctx.granted
            await self.observe(backend, ticket, token_key, None)

    async def close(self) -> None:
        if self.redis is not None:
            await self.redis.close()


def shared_rate_limits() -> SharedRateLimits | None:
    """The limiter the settings ask for (None when DISCORD_RATE_LIMITS is ``off``)."""
    mode = settings.DISCORD_RATE_LIMITS
    if mode == "off":
        return None
    redis_url = settings.REDIS_URL if mode == "shared" and settings.REDIS_URL else None
    prefix = f"{settings.CACHES['default'].get('KEY_PREFIX', 'guildhall')}:discord-rl"
    return SharedRateLimits(redis_url, prefix=prefix, global_limit=settings.DISCORD_GLOBAL_RATE_LIMIT)
