"""REST routes for application commands, interaction callbacks and interaction webhooks (follow-ups)."""

from __future__ import annotations

from aiohttp import web

from .commands import echo_commands, validate_commands
from .payloads import EPHEMERAL, LOADING, now_iso
from .responses import Ctx, Reply, Router, check_message_body, error, json_response, no_content
from .routes_core import build_message, guild_of, store_message

router = Router()
route = router.route
CALLBACK_TYPES = {1, 4, 5, 6, 7, 8, 9, 10, 12}


def _check_app(ctx: Ctx) -> None:
    if ctx.params["app_id"] != ctx.state.app_id:
        raise Reply(error(404, 10002, "Unknown Application"))


# --- commands -----------------------------------------------------------------------------
@route("GET", r"/applications/(?P<app_id>\d+)/commands")
async def get_global_commands(ctx: Ctx) -> web.Response:
    _check_app(ctx)
    return json_response(ctx.state.registered_commands.get(None, []))


@route("PUT", r"/applications/(?P<app_id>\d+)/commands")
async def put_global_commands(ctx: Ctx) -> web.Response:
    _check_app(ctx)
    return validate_commands(ctx.body) or json_response(echo_commands(ctx.state, ctx.body, None))


@route("GET", r"/applications/(?P<app_id>\d+)/guilds/(?P<guild_id>\d+)/commands")
async def get_guild_commands(ctx: Ctx) -> web.Response:
    _check_app(ctx)
    g = guild_of(ctx)
    return json_response(ctx.state.registered_commands.get(g.id, []))


@route("PUT", r"/applications/(?P<app_id>\d+)/guilds/(?P<guild_id>\d+)/commands")
async def put_guild_commands(ctx: Ctx) -> web.Response:
    _check_app(ctx)
    g = guild_of(ctx)
    return validate_commands(ctx.body) or json_response(echo_commands(ctx.state, ctx.body, g.id))


# --- interaction callbacks ----------------------------------------------------------------
def _interaction_for(ctx: Ctx, interaction_id: int | None = None) -> dict:
    token = ctx.params["token"]
    state = ctx.state
    if interaction_id is not None:
        found = state.interactions.get(interaction_id)
    else:
        found = next((i for i in state.interactions.values() if i["token"] == str(token)), None)
    if found is None or found["token"] != str(token):
        raise Reply(error(404, 10062, "Unknown interaction"))
    return found


def _interaction_message(ctx: Ctx, interaction: dict, body: dict, *, flags: int) -> dict:
    """A message sent through an interaction: authored by the bot, typed as a command reply."""
    state = ctx.state
    g = state.guilds.get(int(interaction["guild_id"])) if interaction.get("guild_id") else None
    invoker = interaction.get("member", {}).get("user") or interaction.get("user")
    extra = {
        "type": 20,
        "webhook_id": str(state.app_id),
        "application_id": str(state.app_id),
        "flags": flags,
        "interaction_metadata": {
            "id": interaction["id"],
            "type": interaction["type"],
            "user": invoker,
            "authorizing_integration_owners": interaction.get("authorizing_integration_owners", {}),
        },
    }
    return build_message(ctx, int(interaction["channel_id"]), g, body | {"flags": flags}, state.bot_user, extra)


@route("POST", r"/interactions/(?P<interaction_id>\d+)/(?P<token>[^/]+)/callback", auth=False)
async def interaction_callback(ctx: Ctx) -> web.Response:
    state = ctx.state
    interaction = _interaction_for(ctx, ctx.params["interaction_id"])
    body = ctx.body if isinstance(ctx.body, dict) else {}
    kind, data = body.get("type"), body.get("data") or {}
    if kind not in CALLBACK_TYPES:
        return error(
            400,
            50035,
            "Invalid Form Body",
            {"type": {"_errors": [{"code": "BASE_TYPE_CHOICES", "message": f"Value must be one of {sorted(CALLBACK_TYPES)}."}]}},
        )
    if kind == 4:
        invalid = check_message_body(data, ctx.files)
        if invalid is not None:
            return invalid
    with state.lock:
        if int(interaction["id"]) in state.acknowledged:
            return error(400, 40060, "Interaction has already been acknowledged.")
        state.acknowledged[int(interaction["id"])] = kind
        state.interaction_responses.append(
            {
                "interaction_id": int(interaction["id"]),
                "token": interaction["token"],
                "type": kind,
                "data": data,
                "files": [f["filename"] for f in ctx.files],
            }
        )
    message = None
    flags = int(data.get("flags") or 0)
    if kind in (4, 5):
        message = _interaction_message(ctx, interaction, data if kind == 4 else {}, flags=flags | (LOADING if kind == 5 else 0))
        with state.lock:
            state.originals[interaction["token"]] = message
        if kind == 4 and not flags & EPHEMERAL:
            await ctx.gateway.dispatch(
                int(interaction["guild_id"]) if interaction.get("guild_id") else None, "MESSAGE_CREATE", message
            )
    if ctx.query.get("with_response") not in ("1", "true", "True"):
        return no_content()
    # discord.py 2.5+ always asks for the callback response object (InteractionCallbackResponse).
    summary = {
        "id": interaction["id"],
        "type": interaction["type"],
        "response_message_loading": kind == 5,
        "response_message_ephemeral": bool(flags & EPHEMERAL),
    }
    resource: dict = {"type": kind}
    if message is not None:
        summary["response_message_id"] = message["id"]
        resource["message"] = message
    return json_response({"interaction": summary, "resource": resource})


# --- interaction webhooks (follow-ups and edits) --------------------------------------------
def _followup_record(ctx: Ctx, interaction: dict, message_id: object, body: dict) -> dict:
    return dict(body) | {
        "method": ctx.method,
        "interaction_id": int(interaction["id"]),
        "token": interaction["token"],
        "message_id": message_id,
        "files": [f["filename"] for f in ctx.files],
    }


@route("POST", r"/webhooks/(?P<app_id>\d+)/(?P<token>[^/]+)", auth=False)
async def followup(ctx: Ctx) -> web.Response:
    _check_app(ctx)
    interaction = _interaction_for(ctx)
    if int(interaction["id"]) not in ctx.state.acknowledged:
        return error(404, 10015, "Unknown Webhook")  # Discord: follow-ups need an answered interaction
    invalid = check_message_body(ctx.body, ctx.files)
    if invalid is not None:
        return invalid
    flags = int(ctx.body.get("flags") or 0)
    message = _interaction_message(ctx, interaction, ctx.body, flags=flags)
    ctx.state.record("followups", _followup_record(ctx, interaction, None, ctx.body) | {"id": int(message["id"])})
    if not flags & EPHEMERAL:
        await ctx.gateway.dispatch(int(interaction["guild_id"]), "MESSAGE_CREATE", message)
    wait = ctx.query.get("wait") in ("1", "true", "True")
    return json_response(message) if wait else no_content()


def _webhook_message(ctx: Ctx, interaction: dict) -> dict:
    message_id = ctx.params["message_id"]
    if message_id == "@original":
        found = ctx.state.originals.get(interaction["token"])
    else:
        found = ctx.state.message_store.get(message_id)
        if found is not None and (found.get("interaction_metadata") or {}).get("id") != interaction["id"]:
            found = None
    if found is None:
        raise Reply(error(404, 10008, "Unknown Message"))
    return found


@route("GET", r"/webhooks/(?P<app_id>\d+)/(?P<token>[^/]+)/messages/(?P<message_id>@original|\d+)", auth=False)
async def get_webhook_message(ctx: Ctx) -> web.Response:
    _check_app(ctx)
    return json_response(_webhook_message(ctx, _interaction_for(ctx)))


@route("PATCH", r"/webhooks/(?P<app_id>\d+)/(?P<token>[^/]+)/messages/(?P<message_id>@original|\d+)", auth=False)
async def edit_webhook_message(ctx: Ctx) -> web.Response:
    _check_app(ctx)
    interaction = _interaction_for(ctx)
    message = _webhook_message(ctx, interaction)
    invalid = check_message_body(ctx.body, ctx.files, partial=True)
    if invalid is not None:
        return invalid
    with ctx.state.lock:
        was_loading = message.get("flags", 0) & LOADING
        for key in ("content", "embeds", "components"):
            if key in ctx.body:
                message[key] = ctx.body[key] if ctx.body[key] is not None else ("" if key == "content" else [])
        message["flags"] = message.get("flags", 0) & ~LOADING
        if not was_loading:  # filling in a deferred reply is not an "edit"
            message["edited_timestamp"] = now_iso()
        ctx.state.followups.append(_followup_record(ctx, interaction, ctx.params["message_id"], ctx.body))
    store_message(ctx, message)
    return json_response(message)


@route("DELETE", r"/webhooks/(?P<app_id>\d+)/(?P<token>[^/]+)/messages/(?P<message_id>@original|\d+)", auth=False)
async def delete_webhook_message(ctx: Ctx) -> web.Response:
    _check_app(ctx)
    interaction = _interaction_for(ctx)
    message = _webhook_message(ctx, interaction)
    with ctx.state.lock:
        ctx.state.message_store.pop(int(message["id"]), None)
        if ctx.params["message_id"] == "@original":
            ctx.state.originals.pop(interaction["token"], None)
        ctx.state.followups.append(_followup_record(ctx, interaction, ctx.params["message_id"], {}))
    return no_content()
