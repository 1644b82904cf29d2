"""The REST entry point: body parsing, auth, injected failures/429s, routing and the catch-all.

Every request is logged in ``requests``; one that no route knows is answered 404 with a
JSON error and recorded in ``unhandled``, so a test can assert the bot called nothing
the fake doesn't model. A crashing handler answers 400 (never 5xx: discord.py retries
those with multi-second sleeps) and is recorded in ``unhandled`` too.
"""

from __future__ import annotations

import json
import logging
import time
import traceback

from aiohttp import web

from . import routes_apps, routes_core, routes_webhooks
from .responses import Ctx, Reply, error, json_response, rate_limit_headers, too_many_requests

logger = logging.getLogger(__name__)
API_PREFIX = "/api/v10"
STATE = web.AppKey("fake_discord_state", object)
GATEWAY = web.AppKey("fake_discord_gateway", object)
ROUTERS = (routes_core.router, routes_webhooks.router, routes_apps.router)  # channel webhooks before follow-ups


async def _read_body(request: web.Request) -> tuple[object, list[dict]]:
    """(JSON body or multipart ``payload_json``, uploaded files)."""
    content_type = request.headers.get("Content-Type", "")
    if content_type.startswith("multipart/"):
        body, files = None, []
        reader = await request.multipart()
        async for part in reader:
            data = await part.read()
            if part.name == "payload_json":
                body = json.loads(data)
            elif part.filename is not None:
                files.append({"filename": part.filename, "size": len(data), "content_type": part.headers.get("Content-Type")})
        return body, files
    raw = await request.read()
    if not raw:
        return None, []
    return json.loads(raw), []


async def handle(request: web.Request) -> web.StreamResponse:
    """aiohttp handler for every non-gateway request."""
    state, gateway = request.app[STATE], request.app[GATEWAY]
    method = request.method
    path = request.path[len(API_PREFIX) :] if request.path.startswith(API_PREFIX + "/") else None
    found = None
    if path is not None:
        for router in ROUTERS:
            found = router.resolve(method, path)
            if found:
                break
    bucket = found[0].bucket if found else "unknown"
    shown_path = path if path is not None else request.path
    try:
        body, files = await _read_body(request)
    except ValueError:
        body, files = Ellipsis, []
    rule = state.take_rule(method, shown_path)
    route, params = found if found else (None, {})
    limiter = state.rate_limiter if state.rate_limiter is not None and state.rate_limiter.enabled else None
    fault = state.faults.find(method, shown_path) if state.faults is not None and rule is None else None
    limited = limiter.admit(route, params, method, shown_path) if limiter and rule is None and fault is None else None
    if fault is not None:
        response = await state.faults.answer(fault, request, bucket, shown_path)
    elif limited is not None:
        response = limited
    elif rule is not None:
        if rule.status == 429:
            response = too_many_requests(rule.body["retry_after"], rule.body["global"], rule.headers["scope"], bucket)
        else:
            response = json_response(rule.body, rule.status)
    elif found is None:
        state.record(
            "unhandled",
            {"method": method, "path": shown_path, "query": dict(request.query), "body": body if body is not Ellipsis else None},
        )
        response = json_response({"message": "404: Not Found", "code": 0}, 404)
    elif body is Ellipsis:
        response = error(400, 50109, "The request body contains invalid JSON.")
    elif found[0].auth and request.headers.get("Authorization") != f"Bot {state.token}":
        response = json_response({"message": "401: Unauthorized", "code": 0}, 401)
    else:
        route, params = found
        ctx = Ctx(state=state, gateway=gateway, request=request, method=method, path=path, params=params, body=body, files=files)
        try:
            response = await route.handler(ctx)
        except Reply as reply:
            response = reply.response
        except Exception as exc:  # a bug in the fake (or a body it can't read): make it loud, not a retry storm
            logger.exception("fake Discord handler for %s %s crashed", method, path)
            state.record(
                "unhandled", {"method": method, "path": path, "crash": "".join(traceback.format_exception_only(exc)).strip()}
            )
            response = error(400, 0, f"fake Discord handler crashed: {exc!r}")
    if response.status != 429:
        headers = limiter.headers(route, params) if limiter else rate_limit_headers(bucket, state.advertised_limit)
        response.headers.update(headers)
    if limiter is not None:
        limiter.count_answer(response)
    state.record("requests", {"method": method, "path": shown_path, "status": response.status, "at": time.time()})
    return response
