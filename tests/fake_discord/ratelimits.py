"""Discord's REST rate limits, enforced by the fake when a test switches them on.

Discord's shape (https://discord.com/developers/docs/topics/rate-limits):

- a **global** limit per bot token (50 requests per second), not applied to interaction
  callbacks and interaction webhooks (the routes that need no bot token);
- **per-route buckets**: routes that share a bucket (role add and role remove on a member)
  carry the same ``X-RateLimit-Bucket`` hash, and a bucket is counted per *major
  parameter* (guild, channel or webhook). A window opens with the first request and
  closes ``reset_after`` seconds later;
- ``X-RateLimit-Limit/Remaining/Reset/Reset-After/Bucket`` on every answer;
- 429 with a JSON ``retry_after`` and ``global`` flag and ``X-RateLimit-Scope``;
- the **invalid-request ceiling**: 10,000 answers of 401, 403 or 429 (not counting
  ``shared``-scope 429s) in 10 minutes get the token's address banned for a while; a ban
  is Cloudflare's plain-text 429 without ``Via``, which discord.py reports as such.

Every 429 the fake sends is recorded in ``rate_limited`` with ``fresh``: whether it was the
first request of a route and major parameter that had never been answered before, the
only 429 a client can't avoid (it could not have known the bucket's state).
"""

from __future__ import annotations

import collections
import hashlib
import time
from dataclasses import dataclass, field

from aiohttp import web

from .responses import RATE_LIMIT, RATE_LIMIT_RESET_AFTER, Route, json_response

ROLE_ROUTE = r"/guilds/(?P<guild_id>\d+)/members/(?P<user_id>\d+)/roles/(?P<role_id>\d+)"
MESSAGE_ROUTE = r"/channels/(?P<channel_id>\d+)/messages"
MAJOR_PARAMETERS = ("channel_id", "guild_id", "app_id")
BAN_BODY = (
    "You are being blocked from accessing our API temporarily due to exceeding our rate limits frequently. "
    "Please read our docs at https://discord.com/developers/docs/topics/rate-limits to prevent this moving forward."
)


@dataclass(frozen=True)
class BucketLimit:
    """``limit`` requests per window of ``reset_after`` seconds, per major parameter."""

    limit: int
    reset_after: float


@dataclass
class RateLimits:
    """What the fake enforces; pass one as ``FakeDiscord(rate_limits=...)``.

    ``shared_routes`` names route patterns that share one bucket whatever the method (as
    Discord's role PUT and DELETE on a member do); ``buckets`` gives a named bucket its
    limit, every other route gets ``default``.
    """

    global_limit: int = 50
    global_window: float = 1.0
    default: BucketLimit = BucketLimit(RATE_LIMIT, RATE_LIMIT_RESET_AFTER)
    shared_routes: dict[str, str] = field(default_factory=lambda: {ROLE_ROUTE: "member-roles"})
    buckets: dict[str, BucketLimit] = field(default_factory=lambda: {"member-roles": BucketLimit(10, 1.0)})
    # Discord's per-channel limit on new messages (5 per 5 s), off unless given (CHANNEL_MESSAGES):
    # the tests that chat with the bot in one channel would otherwise wait on it.
    channel_messages: BucketLimit | None = None
    invalid_ceiling: int = 10_000
    invalid_window: float = 600.0
    ban_seconds: float = 3600.0


CHANNEL_MESSAGES = BucketLimit(5, 5.0)


@dataclass
class _Window:
    reset_at: float  # monotonic
    used: int = 0


class RateLimiter:
    """The fake's enforcement; lives on the fake's loop (one thread), records under the state's lock."""

    def __init__(self, limits: RateLimits, state: object) -> None:
        self.limits = limits
        self.state = state  # FakeState
        self.enabled = True
        self.global_hits: collections.deque[float] = collections.deque()
        self.windows: dict[tuple[str, str], _Window] = {}
        self.answered: set[tuple[str, str]] = set()  # (route key, major) that got bucket headers
        self.invalid: collections.deque[float] = collections.deque()
        self.banned_until = 0.0

    # --- routes -> buckets ----------------------------------------------------------------
    def bucket_name(self, route: Route) -> str:
        if self.limits.channel_messages is not None and route.method == "POST" and route.regex.pattern == MESSAGE_ROUTE:
            return "channel-messages"
        return self.limits.shared_routes.get(route.regex.pattern, route.bucket)

    def limit_of(self, name: str) -> BucketLimit:
        if name == "channel-messages" and self.limits.channel_messages is not None:
            return self.limits.channel_messages
        return self.limits.buckets.get(name, self.limits.default)

    @staticmethod
    def major_of(params: dict) -> str:
        for name in MAJOR_PARAMETERS:
            if name in params:
                return f"{name}={params[name]}" + (f"/{params['token']}" if name == "app_id" and "token" in params else "")
        return ""

    @staticmethod
    def bucket_hash(name: str) -> str:
        return hashlib.sha1(name.encode()).hexdigest()[:16]

    def _window(self, name: str, major: str, now: float) -> _Window:
        key = (name, major)
        window = self.windows.get(key)
        if window is None or now >= window.reset_at:
            window = self.windows[key] = _Window(reset_at=now + self.limit_of(name).reset_after)
        return window

    # --- the gate -------------------------------------------------------------------------
    def admit(self, route: Route | None, params: dict, method: str, path: str) -> web.Response | None:
        """None to let the request through (counted), or the 429 that answers it."""
        if not self.enabled:
            return None
        now = time.monotonic()
        if now < self.banned_until:
            self._record(method, path, "ban", "", False, self.banned_until - now, banned=True)
            return web.Response(status=429, text=BAN_BODY, headers={"Content-Type": "text/plain"})
        if route is None or route.auth:  # interactions and interaction webhooks are outside the global limit
            window_start = now - self.limits.global_window
            while self.global_hits and self.global_hits[0] <= window_start:
                self.global_hits.popleft()
            if len(self.global_hits) >= self.limits.global_limit:
                retry_after = round(self.global_hits[0] + self.limits.global_window - now, 3)
                self._record(method, path, "global", "", False, retry_after)
                return _too_many(retry_after, global_=True, headers={"X-RateLimit-Global": "true"})
        if route is None:
            self.global_hits.append(now)
            return None
        name, major = self.bucket_name(route), self.major_of(params)
        window = self._window(name, major, now)
        limit = self.limit_of(name)
        route_key = (f"{route.method} {route.regex.pattern}", major)
        if window.used >= limit.limit:
            retry_after = round(window.reset_at - now, 3)
            fresh = route_key not in self.answered
            self.answered.add(route_key)
            self._record(method, path, name, major, fresh, retry_after)
            return _too_many(retry_after, global_=False, headers=self._headers(name, window, now))
        window.used += 1
        if route.auth:
            self.global_hits.append(now)
        return None

    def headers(self, route: Route | None, params: dict) -> dict[str, str]:
        """The bucket's X-RateLimit-* headers for an answer (after its request was counted)."""
        if route is None:
            name, major = "unknown", ""
        else:
            name, major = self.bucket_name(route), self.major_of(params)
            self.answered.add((f"{route.method} {route.regex.pattern}", major))
        now = time.monotonic()
        return self._headers(name, self._window(name, major, now), now)

    def _headers(self, name: str, window: _Window, now: float) -> dict[str, str]:
        limit = self.limit_of(name)
        reset_after = max(0.0, window.reset_at - now)
        return {
            "X-RateLimit-Limit": str(limit.limit),
            "X-RateLimit-Remaining": str(max(0, limit.limit - window.used)),
            "X-RateLimit-Reset": f"{time.time() + reset_after:.3f}",
            "X-RateLimit-Reset-After": f"{reset_after:.3f}",
            "X-RateLimit-Bucket": self.bucket_hash(name),
        }

    def count_answer(self, response: web.StreamResponse) -> None:
        """Count 401/403/429 answers towards the invalid-request ceiling; ban past it."""
        if not self.enabled or response.status not in (401, 403, 429):
            return
        if response.headers.get("X-RateLimit-Scope") == "shared":
            return
        now = time.monotonic()
        self.invalid.append(now)
        while self.invalid and self.invalid[0] <= now - self.limits.invalid_window:
            self.invalid.popleft()
        if len(self.invalid) >= self.limits.invalid_ceiling and now >= self.banned_until:
            self.banned_until = now + self.limits.ban_seconds

    def _record(
        self, method: str, path: str, bucket: str, major: str, fresh: bool, retry_after: float, banned: bool = False
    ) -> None:
        self.state.record(
            "rate_limited",
            {
                "method": method,
                "path": path,
                "bucket": bucket,
                "major": major,
                "global": bucket == "global",
                "fresh": fresh,
                "banned": banned,
                "retry_after": retry_after,
                "at": time.time(),
            },
        )


def _too_many(retry_after: float, *, global_: bool, headers: dict[str, str]) -> web.Response:
    body = {"message": "You are being rate limited.", "retry_after": retry_after, "global": global_, "code": 0}
    extra = {
        "Via": "1.1 google",
        "Retry-After": str(max(1, int(retry_after + 0.999))),
        "X-RateLimit-Scope": "global" if global_ else "user",
    }
    return json_response(body, 429, headers | extra)
