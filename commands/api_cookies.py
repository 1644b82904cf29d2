"""API routes for setting counts and for cookie roles: /api/v1/guilds/{guild_id}/cookies/…

A count set here, like one set on the dashboard, reaches the member's cookie roles on
Discord through the worker (``commands.notify.cookie_roles_sync_later``) after the commit.
"""

from __future__ import annotations

import logging
from typing import Annotated

from django.http import HttpRequest
from ninja import Router, Schema, Status
from pydantic import BeforeValidator, Field, Strict

from commands.notify import cookie_roles_sync_later
from commands.selectors import cookie_roles_list
from commands.services import cookie_role_add, cookie_role_remove, cookie_set
from commands.services.cookie_roles import MAX_THRESHOLD
from commands.services.cookies import MAX_BALANCE
from config.api import refusals, requires
from config.api_fields import DiscordId, RequestBody, Snowflake, whole_number_parse

logger = logging.getLogger(__name__)
Count = Annotated[int, Field(ge=-MAX_BALANCE, le=MAX_BALANCE), Strict(), BeforeValidator(whole_number_parse)]
Threshold = Annotated[int, Field(ge=1, le=MAX_THRESHOLD), Strict(), BeforeValidator(whole_number_parse)]


class CountIn(RequestBody):
    balance: Count
    actor_id: DiscordId | None = None


class CountOut(Schema):
    member_id: Snowflake
    balance: int
    delta: int = Field(description="How much the count moved.")
    roles_synced: bool = Field(description="Whether the member's cookie roles were queued to be made to match.")


class CookieRoleIn(RequestBody):
    threshold: Threshold
    role_id: DiscordId
    actor_id: DiscordId | None = None


class CookieRoleOut(Schema):
    role_id: Snowflake
    threshold: int
    added_by_id: Snowflake | None


@requires("commands.change_cookiebalance")
def cookies_set(request: HttpRequest, guild_id: DiscordId, member_id: DiscordId, body: CountIn):
    """Set a member's count (0 resets it); the ledger records the difference and their cookie roles follow."""
    change = cookie_set(guild_id=guild_id, member_id=member_id, balance=body.balance, actor_id=body.actor_id)
    if change.roles is not None:
        cookie_roles_sync_later(guild_id=guild_id, member_ids=[member_id])
    logger.info("cookies of %s in %s set to %s through the API", member_id, guild_id, change.balance)
    return {"member_id": member_id, "balance": change.balance, "delta": change.delta, "roles_synced": change.roles is not None}


@requires("commands.view_cookierole")
def cookie_roles_get(request: HttpRequest, guild_id: DiscordId):
    """The guild's cookie roles, lowest threshold first."""
    return cookie_roles_list(guild_id=guild_id)


@requires("commands.add_cookierole", "commands.change_cookierole")
def cookie_roles_add(request: HttpRequest, guild_id: DiscordId, body: CookieRoleIn):
    """Give ``role_id`` from ``threshold`` cookies on (201), or move a cookie role to a new threshold (200).

    The worker then gives it to the members who already qualify (and takes it, on a move up,
    from those no longer at it), paced; the API can't see the bot's place in the
    role list, so a role above the bot's highest role is refused by Discord when it is given.
    """
    row, created = cookie_role_add(guild_id=guild_id, threshold=body.threshold, role_id=body.role_id, actor_id=body.actor_id)
    return Status(201 if created else 200, row)


@requires("commands.delete_cookierole")
def cookie_roles_delete(request: HttpRequest, guild_id: DiscordId, role_id: DiscordId):
    """Stop giving a role for cookies; the worker takes it from the members whose count reached it."""
    cookie_role_remove(guild_id=guild_id, role_id=role_id)
    return Status(204, None)


def cookie_routes_register(router: Router) -> None:
    """Add these routes to the commands router (a PUT beside its GET of the same path must share its router)."""
    router.put("/guilds/{guild_id}/cookies/balances/{member_id}", response={200: CountOut, **refusals(400)}, tags=["cookies"])(
        cookies_set
    )
    router.get("/guilds/{guild_id}/cookies/roles", response={200: list[CookieRoleOut], **refusals()}, tags=["cookies"])(
        cookie_roles_get
    )
    router.post(
        "/guilds/{guild_id}/cookies/roles", response={200: CookieRoleOut, 201: CookieRoleOut, **refusals(400)}, tags=["cookies"]
    )(cookie_roles_add)
    router.delete("/guilds/{guild_id}/cookies/roles/{role_id}", response={204: None, **refusals(404)}, tags=["cookies"])(
        cookie_roles_delete
    )
