"""Channel webhooks: ``POST /webhooks/{id}/{token}`` (Execute Webhook), as the alerts post them.

Interaction follow-ups use the same path with the application's id, so a request whose id is
not a channel webhook made here goes on to the follow-up route. Every accepted post is
recorded in ``webhook_posts`` (the body plus ``webhook_id``, ``channel_id`` and ``at``).
"""

from __future__ import annotations

import secrets
import time

from aiohttp import web

from . import routes_apps
from .models import next_snowflake
from .payloads import now_iso
from .responses import Ctx, Router, check_message_body, error, json_response, no_content

router = Router()


def webhook_create(fake, channel_id: int | None = None, name: str = "Guildhall alerts") -> str:
    """Make a channel webhook on ``fake`` (a FakeDiscord); return its execute URL, as Discord shows it."""
    webhook_id, token = next_snowflake(), secrets.token_urlsafe(32)
    with fake.state.lock:
        fake.state.channel_webhooks[webhook_id] = {"token": token, "channel_id": channel_id or next_snowflake(), "name": name}
    return f"{fake.api_base}/webhooks/{webhook_id}/{token}"


def webhook_posts(fake) -> list[dict]:
    """What was posted to the fake's channel webhooks, in order."""
    return fake.state.snapshot("webhook_posts")


@router.route("POST", r"/webhooks/(?P<webhook_id>\d+)/(?P<token>[^/]+)", auth=False)
async def execute_webhook(ctx: Ctx) -> web.StreamResponse:
    hook = ctx.state.channel_webhooks.get(ctx.params["webhook_id"])
    if hook is None:  # an interaction follow-up: the id is the application's
        ctx.params = {"app_id": ctx.params["webhook_id"], "token": ctx.params["token"]}
        return await routes_apps.followup(ctx)
    if str(ctx.params["token"]) != hook["token"]:
        return error(401, 50027, "Invalid Webhook Token")
    invalid = check_message_body(ctx.body, ctx.files)
    if invalid is not None:
        return invalid
    record = dict(ctx.body) | {"webhook_id": ctx.params["webhook_id"], "channel_id": hook["channel_id"], "at": time.time()}
    ctx.state.record("webhook_posts", record)
    if ctx.query.get("wait") not in ("1", "true", "True"):
        return no_content()
    author = {"id": str(ctx.params["webhook_id"]), "username": ctx.body.get("username") or hook["name"], "bot": True}
    return json_response(
        {
            "id": str(next_snowflake()),
            "type": 0,
            "channel_id": str(hook["channel_id"]),
            "webhook_id": str(ctx.params["webhook_id"]),
            "author": author | {"discriminator": "0000", "avatar": None},
            "content": ctx.body.get("content") or "",
            "embeds": ctx.body.get("embeds") or [],
            "attachments": [],
            "mentions": [],
            "mention_roles": [],
            "timestamp": now_iso(),
        }
    )
