"""REST routes for the bot's identity, gateway discovery, guilds, members, roles, channels and messages."""

from __future__ import annotations

from aiohttp import web

from . import payloads
from .models import MANAGE_MESSAGES, MANAGE_ROLES, SEND_MESSAGES, TEXT_CHANNEL_TYPES, VIEW_CHANNEL, FakeGuild, FakeUser
from .responses import Ctx, Reply, Router, attachments_from, check_message_body, error, form_error, json_response, no_content

router = Router()
route = router.route


# --- shared helpers (also used by routes_apps) ---------------------------------------------
def guild_of(ctx: Ctx) -> FakeGuild:
    """The guild named by the path, or a 404 Unknown Guild reply."""
    g = ctx.state.guilds.get(ctx.params["guild_id"])
    if g is None:
        raise Reply(error(404, 10004, "Unknown Guild"))
    return g


def bot_lacks(ctx: Ctx, g: FakeGuild, permission: int) -> bool:
    """Whether the fake enforces permissions and the bot lacks any bit of ``permission`` in the guild."""
    return ctx.state.enforce_permissions and g.permissions_of(ctx.state.bot_user.id) & permission != permission


def store_message(ctx: Ctx, message: dict) -> dict:
    """Keep a message so it can be fetched, edited, deleted or replied to."""
    with ctx.state.lock:
        ctx.state.message_store[int(message["id"])] = message
    return message


def build_message(
    ctx: Ctx, channel_id: int, g: FakeGuild | None, body: dict, author: FakeUser, extra: dict | None = None
) -> dict:
    """A stored message object from a create body (content, embeds, files, reference, nonce)."""
    extra = dict(extra or {})
    if body.get("nonce") is not None:
        extra["nonce"] = body["nonce"]
    if body.get("flags"):
        extra["flags"] = body["flags"]
    ref = body.get("message_reference")
    if ref:
        referenced = ctx.state.message_store.get(int(ref.get("message_id", 0)))
        if referenced is None and ref.get("fail_if_not_exists", True):
            raise Reply(form_error("message_reference", "MESSAGE_REFERENCE_UNKNOWN_MESSAGE", "Unknown message"))
        extra["message_reference"] = {
            "type": ref.get("type", 0),
            "message_id": str(ref.get("message_id")),
            "channel_id": str(ref.get("channel_id") or channel_id),
            **({"guild_id": str(g.id)} if g else {}),
        }
        extra["referenced_message"] = referenced
        extra.setdefault("type", 19)
    message = payloads.message(
        channel_id=channel_id,
        guild=g,
        author=author,
        content=body.get("content") or "",
        embeds=body.get("embeds") or [],
        attachments=attachments_from(ctx.files),
        allowed_mentions=body.get("allowed_mentions"),
        extra=extra,
    )
    if body.get("components"):
        message["components"] = body["components"]
    return store_message(ctx, message)


def record_of(message: dict, body: dict, files: list) -> dict:
    """What tests see in ``fake.messages``/``dms``: the body as sent, plus int ids."""
    record = dict(body)
    record.update(
        id=int(message["id"]),
        channel_id=int(message["channel_id"]),
        guild_id=int(message["guild_id"]) if "guild_id" in message else None,
        content=body.get("content") or "",
        embeds=body.get("embeds") or [],
        nonce=body.get("nonce"),
        allowed_mentions=body.get("allowed_mentions"),
        files=[f["filename"] for f in files],
    )
    return record


# --- identity and gateway discovery -----------------------------------------------------------
@route("GET", r"/users/@me")
async def get_me(ctx: Ctx) -> web.Response:
    me = payloads.user(ctx.state.bot_user) | {
        "verified": True,
        "mfa_enabled": False,
        "flags": 0,
        "email": None,
        "locale": "en-US",
    }
    return json_response(me)


@route("GET", r"/users/(?P<user_id>\d+)")
async def get_user(ctx: Ctx) -> web.Response:
    found = ctx.state.find_user(ctx.params["user_id"])
    return json_response(payloads.user(found)) if found else error(404, 10013, "Unknown User")


@route("GET", r"/(?:oauth2/)?applications/@me")
async def get_application(ctx: Ctx) -> web.Response:
    state = ctx.state
    return json_response(payloads.application(state.app_id, state.bot_user, state.owner, state.application_flags()))


@route("GET", r"/gateway", auth=False)
async def get_gateway(ctx: Ctx) -> web.Response:
    return json_response({"url": ctx.gateway.url})


@route("GET", r"/gateway/bot")
async def get_gateway_bot(ctx: Ctx) -> web.Response:
    limit = {"total": 1000, "remaining": 999, "reset_after": 86_400_000, "max_concurrency": 1}
    return json_response({"url": ctx.gateway.url, "shards": ctx.state.recommended_shards, "session_start_limit": limit})


# --- guilds, members, roles ---------------------------------------------------------------------
@route("GET", r"/guilds/(?P<guild_id>\d+)")
async def get_guild(ctx: Ctx) -> web.Response:
    return json_response(payloads.guild(guild_of(ctx), with_counts=ctx.query.get("with_counts") in ("true", "1", "True")))


@route("GET", r"/guilds/(?P<guild_id>\d+)/roles")
async def get_roles(ctx: Ctx) -> web.Response:
    return json_response([payloads.role(r) for r in guild_of(ctx).roles])


@route("GET", r"/guilds/(?P<guild_id>\d+)/channels")
async def get_channels(ctx: Ctx) -> web.Response:
    g = guild_of(ctx)
    return json_response([payloads.channel(c, g.id) for c in g.channels])


@route("GET", r"/guilds/(?P<guild_id>\d+)/members/(?P<user_id>\d+)")
async def get_member(ctx: Ctx) -> web.Response:
    g = guild_of(ctx)
    if ctx.params["user_id"] not in g.members:
        return error(404, 10007, "Unknown Member")
    with ctx.state.lock:
        return json_response(payloads.member(g, ctx.params["user_id"]))


@route("GET", r"/guilds/(?P<guild_id>\d+)/members")
async def list_members(ctx: Ctx) -> web.Response:
    """Discord's "List Guild Members": ``limit`` 1-1000 (default 1), ordered by user id after ``after``."""
    g = guild_of(ctx)
    raw_limit, raw_after = ctx.query.get("limit", "1"), ctx.query.get("after", "0")
    if not raw_limit.isdigit() or not 1 <= int(raw_limit) <= 1000:
        return form_error("limit", "NUMBER_TYPE_MAX" if raw_limit.isdigit() else "NUMBER_TYPE_COERCE", "Must be 1-1000.")
    if not raw_after.isdigit():
        return form_error("after", "NUMBER_TYPE_COERCE", "Value is not snowflake.")
    limit, after = int(raw_limit), int(raw_after)
    with ctx.state.lock:
        ids = sorted(uid for uid in g.members if uid > after)[:limit]
        return json_response([payloads.member(g, uid) for uid in ids])


async def _role_change(ctx: Ctx) -> web.Response:
    state, g = ctx.state, guild_of(ctx)
    user_id, role_id = ctx.params["user_id"], ctx.params["role_id"]
    if user_id not in g.members:
        return error(404, 10007, "Unknown Member")
    role = g.role_by_id(role_id)
    if role is None:
        return error(404, 10011, "Unknown Role")
    bot_id = state.bot_user.id
    # Discord's rule: Manage Roles, and only roles below the bot's highest role.
    if bot_lacks(ctx, g, MANAGE_ROLES) or (
        state.enforce_permissions and g.owner_id != bot_id and (role.position >= g.top_position(bot_id) or role.managed)
    ):
        return error(403, 50013, "Missing Permissions")
    with state.lock:
        roles = g.members[user_id]
        before = list(roles)
        if ctx.method == "PUT" and role_id not in roles and role_id != g.id:
            roles.append(role_id)
        elif ctx.method == "DELETE" and role_id in roles:
            roles.remove(role_id)
        state.role_changes.append(
            {"method": ctx.method, "guild_id": g.id, "user_id": user_id, "role_id": role_id, "reason": ctx.reason}
        )
        update = payloads.member_update(g, user_id) if roles != before else None
    if update is not None:
        await ctx.gateway.dispatch(g.id, "GUILD_MEMBER_UPDATE", update)
    return no_content()


route("PUT", r"/guilds/(?P<guild_id>\d+)/members/(?P<user_id>\d+)/roles/(?P<role_id>\d+)")(_role_change)
route("DELETE", r"/guilds/(?P<guild_id>\d+)/members/(?P<user_id>\d+)/roles/(?P<role_id>\d+)")(_role_change)


# --- channels and messages ----------------------------------------------------------------------
def _channel(ctx: Ctx) -> tuple[FakeGuild | None, object]:
    g, where = ctx.state.channel_home(ctx.params["channel_id"])
    if where is None:
        raise Reply(error(404, 10003, "Unknown Channel"))
    return g, where


@route("GET", r"/channels/(?P<channel_id>\d+)")
async def get_channel(ctx: Ctx) -> web.Response:
    g, where = _channel(ctx)
    return json_response(payloads.channel(where, g.id) if g else payloads.dm_channel(ctx.params["channel_id"], where))


@route("POST", r"/channels/(?P<channel_id>\d+)/messages")
async def post_message(ctx: Ctx) -> web.Response:
    state = ctx.state
    g, where = _channel(ctx)
    channel_id = ctx.params["channel_id"]
    if g is not None and where.type not in TEXT_CHANNEL_TYPES:
        return error(400, 50008, "Cannot send messages in a non-text channel")
    if g is not None and bot_lacks(ctx, g, VIEW_CHANNEL | SEND_MESSAGES):
        return error(403, 50013, "Missing Permissions")
    invalid = check_message_body(ctx.body, ctx.files)
    if invalid is not None:
        return invalid
    body = ctx.body
    nonce = body.get("nonce")
    if nonce is not None and body.get("enforce_nonce"):
        earlier = state.message_for_nonce(str(nonce))
        if earlier is not None:
            return json_response(earlier)  # Discord: same nonce again -> the first message, nothing new
    message = build_message(ctx, channel_id, g, body, state.bot_user)
    if nonce is not None and body.get("enforce_nonce"):
        state.remember_nonce(str(nonce), message)
    record = record_of(message, body, ctx.files)
    if g is None:
        record["recipient_id"] = where.id
        state.record("dms", record)
    else:
        state.record("messages", record)
    await ctx.gateway.dispatch(g.id if g else None, "MESSAGE_CREATE", message)  # Discord echoes the bot's own messages
    return json_response(message)


def _stored(ctx: Ctx) -> dict:
    message = ctx.state.message_store.get(ctx.params["message_id"])
    if message is None or int(message["channel_id"]) != ctx.params["channel_id"]:
        raise Reply(error(404, 10008, "Unknown Message"))
    return message


@route("GET", r"/channels/(?P<channel_id>\d+)/messages/(?P<message_id>\d+)")
async def get_message(ctx: Ctx) -> web.Response:
    _channel(ctx)
    return json_response(_stored(ctx))


@route("PATCH", r"/channels/(?P<channel_id>\d+)/messages/(?P<message_id>\d+)")
async def edit_message(ctx: Ctx) -> web.Response:
    g, _ = _channel(ctx)
    message = _stored(ctx)
    if int(message["author"]["id"]) != ctx.state.bot_user.id:
        return error(403, 50005, "Cannot edit a message authored by another user")
    invalid = check_message_body(ctx.body, ctx.files, partial=True)
    if invalid is not None:
        return invalid
    with ctx.state.lock:
        for key in ("content", "embeds", "components", "flags"):
            if key in ctx.body:
                message[key] = ctx.body[key] if ctx.body[key] is not None else ([] if key != "content" else "")
        message["edited_timestamp"] = payloads.now_iso()
        ctx.state.edits.append(dict(ctx.body) | {"channel_id": ctx.params["channel_id"], "message_id": ctx.params["message_id"]})
    await ctx.gateway.dispatch(g.id if g else None, "MESSAGE_UPDATE", message)
    return json_response(message)


@route("DELETE", r"/channels/(?P<channel_id>\d+)/messages/(?P<message_id>\d+)")
async def delete_message(ctx: Ctx) -> web.Response:
    g, _ = _channel(ctx)
    message = _stored(ctx)
    if g is not None and int(message["author"]["id"]) != ctx.state.bot_user.id and bot_lacks(ctx, g, MANAGE_MESSAGES):
        return error(403, 50013, "Missing Permissions")
    with ctx.state.lock:
        ctx.state.message_store.pop(ctx.params["message_id"], None)
        ctx.state.deletions.append(
            {"channel_id": ctx.params["channel_id"], "message_id": ctx.params["message_id"], "reason": ctx.reason}
        )
    event = {"id": message["id"], "channel_id": message["channel_id"]} | ({"guild_id": str(g.id)} if g else {})
    await ctx.gateway.dispatch(g.id if g else None, "MESSAGE_DELETE", event)
    return no_content()


@route("POST", r"/channels/(?P<channel_id>\d+)/typing")
async def typing(ctx: Ctx) -> web.Response:
    _channel(ctx)
    return no_content()


@route("POST", r"/users/@me/channels")
async def open_dm(ctx: Ctx) -> web.Response:
    body = ctx.body if isinstance(ctx.body, dict) else {}
    recipient = ctx.state.find_user(int(body.get("recipient_id", 0)))
    if recipient is None:
        return error(400, 50033, "Invalid Recipient(s)")
    return json_response(payloads.dm_channel(ctx.state.dm_channel_for(recipient), recipient))
