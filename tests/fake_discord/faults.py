"""Timed fault switches: the fake answers 500s, 429s or never answers, for a while.

``FakeDiscord.fault("500", seconds=2)`` makes every matching REST request in the next two
seconds fail that way; a faulted request does not happen (nothing changes on the fake).
``"timeout"`` holds the request for ``hang`` seconds and then drops the connection without
an answer, which is what a client sees when Discord's edge stalls. Every faulted request
is recorded in ``faulted``.
"""

from __future__ import annotations

import asyncio
import re
import time
from dataclasses import dataclass

from aiohttp import web

from .responses import json_response, too_many_requests

KINDS = ("500", "429", "timeout")


@dataclass
class Fault:
    kind: str
    method: str
    pattern: re.Pattern
    until: float  # monotonic
    hang: float
    retry_after: float

    def matches(self, method: str, path: str, now: float) -> bool:
        return now < self.until and self.method in ("*", method) and self.pattern.fullmatch(path) is not None


class Faults:
    """The fake's active fault windows (used on the fake's loop; added from any thread)."""

    def __init__(self, state: object) -> None:
        self.state = state  # FakeState
        self.active: list[Fault] = []

    def add(self, kind: str, seconds: float, *, method: str, path_regex: str, hang: float, retry_after: float) -> None:
        if kind not in KINDS:
            raise ValueError(f"fault kind must be one of {KINDS}, not {kind!r}")
        fault = Fault(kind, method.upper(), re.compile(path_regex), time.monotonic() + seconds, hang, retry_after)
        with self.state.lock:
            self.active.append(fault)

    def find(self, method: str, path: str) -> Fault | None:
        now = time.monotonic()
        with self.state.lock:
            self.active = [f for f in self.active if now < f.until]
            return next((f for f in self.active if f.matches(method, path, now)), None)

    async def answer(self, fault: Fault, request: web.Request, bucket: str, path: str) -> web.StreamResponse:
        """The faulted answer (for ``timeout``: none, the connection is dropped)."""
        self.state.record("faulted", {"kind": fault.kind, "method": request.method, "path": path, "at": time.time()})
        if fault.kind == "500":
            return json_response({"message": "500: Internal Server Error", "code": 0}, 500)
        if fault.kind == "429":
            return too_many_requests(fault.retry_after, False, "user", bucket)
        await asyncio.sleep(fault.hang)
        if request.transport is not None:
            request.transport.close()
        return web.Response(status=504)  # never reaches the client: its socket is gone
