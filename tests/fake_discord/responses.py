"""Shared REST plumbing: the request context, a tiny regex router, and Discord-shaped responses.

Responses are built from bytes with ``Content-Type: application/json`` exactly: aiohttp's
``json_response`` appends ``; charset=utf-8`` and discord.py then reads the body as text.
"""

from __future__ import annotations

import hashlib
import json
import re
import time
import urllib.parse
from collections.abc import Awaitable, Callable
from dataclasses import dataclass, field

from aiohttp import web

from .models import next_snowflake

RATE_LIMIT = 50
RATE_LIMIT_RESET_AFTER = 1.0


@dataclass
class Ctx:
    """One REST request as a handler sees it."""

    state: object  # FakeState
    gateway: object  # Gateway
    request: web.Request
    method: str
    path: str  # relative to /api/v10, without the query
    params: dict = field(default_factory=dict)  # the route's named groups; digit strings as int
    body: object = None  # the JSON body (or multipart payload_json)
    files: list = field(default_factory=list)  # [{"filename", "size", "content_type"}] from multipart

    @property
    def query(self):
        return self.request.query

    @property
    def reason(self) -> str | None:
        """The audit-log reason, url-decoded as Discord does."""
        raw = self.request.headers.get("X-Audit-Log-Reason")
        return None if raw is None else urllib.parse.unquote(raw)


class Reply(Exception):
    """Raised by a handler (or a helper it calls) to answer at once, usually with an error."""

    def __init__(self, response: web.Response) -> None:
        super().__init__(response.status)
        self.response = response


Handler = Callable[[Ctx], Awaitable[web.StreamResponse]]


@dataclass
class Route:
    method: str
    regex: re.Pattern
    handler: Handler
    auth: bool  # whether it needs "Authorization: Bot <token>" (webhook routes don't)
    bucket: str


class Router:
    """Routes (method, full-match regex) to handlers; first match wins."""

    def __init__(self) -> None:
        self.routes: list[Route] = []

    def route(self, method: str, pattern: str, *, auth: bool = True) -> Callable[[Handler], Handler]:
        """Decorator registering ``handler`` for ``method`` and the path regex ``pattern``."""

        def register(handler: Handler) -> Handler:
            bucket = hashlib.sha1(f"{method} {pattern}".encode()).hexdigest()[:16]
            self.routes.append(Route(method, re.compile(pattern), handler, auth, bucket))
            return handler

        return register

    def resolve(self, method: str, path: str) -> tuple[Route, dict] | None:
        """The route and its parameters for a request, or None."""
        for candidate in self.routes:
            if candidate.method != method:
                continue
            match = candidate.regex.fullmatch(path)
            if match:
                params = {k: int(v) if v.isdigit() else v for k, v in match.groupdict().items()}
                return candidate, params
        return None


# Advertised by a fake made with ``unlimited=True`` (the speed benches): a bucket discord.py never waits on.
UNLIMITED = 1_000_000


def rate_limit_headers(bucket: str, limit: int | None = None) -> dict:
    """Plausible X-RateLimit-* headers that never make discord.py pre-emptively wait.

    With the default ``RATE_LIMIT`` (50 a second per bucket and channel, as one of Discord's
    routes), discord.py itself holds a burst of more than 50 requests to one bucket to 50 a
    second; ``limit=UNLIMITED`` advertises a bucket that never fills.
    """
    limit = RATE_LIMIT if limit is None else limit
    return {
        "X-RateLimit-Limit": str(limit),
        "X-RateLimit-Remaining": str(limit - 1),
        "X-RateLimit-Reset": f"{time.time() + RATE_LIMIT_RESET_AFTER:.3f}",
        "X-RateLimit-Reset-After": f"{RATE_LIMIT_RESET_AFTER:.3f}",
        "X-RateLimit-Bucket": bucket,
    }


def json_response(data: object, status: int = 200, headers: dict | None = None) -> web.Response:
    """A JSON response with Discord's exact content type."""
    return web.Response(
        status=status, body=json.dumps(data).encode(), headers={"Content-Type": "application/json", **(headers or {})}
    )


def no_content() -> web.Response:
    """204 with no body and no JSON content type (discord.py would try to parse '' as JSON)."""
    return web.Response(status=204)


def error(status: int, code: int, message: str, errors: dict | None = None) -> web.Response:
    """A Discord error body: ``{"code", "message"[, "errors"]}``."""
    body: dict = {"code": code, "message": message}
    if errors:
        body["errors"] = errors
    return json_response(body, status)


def form_error(field_path: str, code: str, message: str) -> web.Response:
    """400 Invalid Form Body (50035) for one field, shaped like Discord's."""
    errors: dict = {"_errors": [{"code": code, "message": message}]}
    for part in reversed(field_path.split(".")):
        errors = {part: errors}
    return error(400, 50035, "Invalid Form Body", errors)


def too_many_requests(retry_after: float, global_: bool, scope: str, bucket: str) -> web.Response:
    """A 429 that discord.py accepts as a real rate limit (Via header, JSON retry_after).

    A route's 429 keeps the bucket's headers (requests left): Discord's shape for a sub-limit
    on one resource, so it holds back this request and not the whole bucket (the enforced
    limits of tests.fake_discord.ratelimits send ``Remaining: 0`` when a bucket is empty).
    """
    headers = {
        "Via": "1.1 google",
        "Retry-After": str(max(1, int(retry_after + 0.999))),
        "X-RateLimit-Scope": scope,
    }
    if global_:
        headers["X-RateLimit-Global"] = "true"
    else:
        headers.update(rate_limit_headers(bucket))
    body = {"message": "You are being rate limited.", "retry_after": retry_after, "global": global_, "code": 0}
    return json_response(body, 429, headers)


def attachments_from(files: list) -> list[dict]:
    """Attachment objects for uploaded files."""
    out = []
    for f in files:
        attachment_id = next_snowflake()
        url = f"https://cdn.discordapp.invalid/attachments/{attachment_id}/{f['filename']}"
        out.append(
            {
                "id": str(attachment_id),
                "filename": f["filename"],
                "size": f["size"],
                "url": url,
                "proxy_url": url,
                "content_type": f.get("content_type"),
            }
        )
    return out


def _embed_chars(embed: dict) -> int:
    """The characters Discord counts towards an embed's 6000 limit."""
    text = [
        embed.get("title"),
        embed.get("description"),
        (embed.get("footer") or {}).get("text"),
        (embed.get("author") or {}).get("name"),
    ]
    text += [part for f in embed.get("fields") or () for part in (f.get("name"), f.get("value"))]
    return sum(len(t) for t in text if t)


def check_message_body(body: object, files: list, *, partial: bool = False) -> web.Response | None:
    """Discord's basic validation of a message body; an error response, or None if fine."""
    if not isinstance(body, dict):
        return error(400, 50109, "The request body contains invalid JSON.")
    content = body.get("content")
    if content is not None and len(str(content)) > 2000:
        return form_error("content", "BASE_TYPE_MAX_LENGTH", "Must be 2000 or fewer in length.")
    embeds = body.get("embeds") or []
    if len(embeds) > 10:
        return form_error("embeds", "BASE_TYPE_MAX_LENGTH", "Must be 10 or fewer in length.")
    if sum(map(_embed_chars, embeds)) > 6000:
        return form_error("embeds", "MAX_EMBED_SIZE_EXCEEDED", "Embed size exceeds maximum size of 6000")
    if not partial and not (content or embeds or files or body.get("sticker_ids") or body.get("components") or body.get("poll")):
        return error(400, 50006, "Cannot send an empty message")
    return None
