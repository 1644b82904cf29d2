"""API routes for custom commands and cookies, per guild: /api/v1/guilds/{guild_id}/…

Routes parse, call one selector or service and render; the services' refusals become
4xx answers (config/api.py). Each route names the model permission it needs.
"""

from __future__ import annotations

import logging
from datetime import datetime
from typing import Annotated, Literal

from django.db.models import prefetch_related_objects
from django.http import HttpRequest
from ninja import Path, Query, Router, Schema, Status
from ninja.errors import HttpError
from pydantic import BeforeValidator, Field, Strict, StrictBool

from commands.api_cookies import cookie_routes_register
from commands.command_templates import MAX_TEMPLATE_LENGTH
from commands.models import CookieBalance, CustomCommand
from commands.restrictions import MAX_RESTRICTION_IDS
from commands.selectors import command_get, command_list, cookie_leaderboard, cookie_ledger, cookie_standing
from commands.services import NAME_PATTERN, command_create, command_delete, command_update
from commands.services.custom_commands import MAX_COOLDOWN_SECONDS
from config.api import refusals, requires
from config.api_fields import Cursor, DiscordId, Limit, NoNul, RequestBody, Snowflake, SnowflakeList, whole_number_parse
from config.database import lag_tolerant_alias
from config.pagination import paginate
from guilds.api_names import attach_names, name_of
from guilds.selectors import directory_names

logger = logging.getLogger(__name__)
router = Router()

COMMAND_ORDER = ("name",)  # unique per guild: the index command_unique_name_per_guild
BALANCE_ORDER = ("-balance", "member_id")  # the index cookie_leaderboard
LEDGER_ORDER = ("-created_at", "-pk")
LEDGER_NAMES = (("member", "giver_id"), ("member", "receiver_id"))
CommandName = Path(..., pattern=NAME_PATTERN, description="A command's name or one of its aliases.")
NameText = Annotated[str, Field(min_length=1, max_length=32), NoNul]
TemplateText = Annotated[str, Field(min_length=1, max_length=MAX_TEMPLATE_LENGTH), NoNul]
NoteText = Annotated[str, Field(max_length=200), NoNul]
RestrictionIds = Annotated[list[DiscordId], Field(max_length=MAX_RESTRICTION_IDS)]
CooldownSeconds = Annotated[int, Field(ge=0, le=MAX_COOLDOWN_SECONDS), Strict(), BeforeValidator(whole_number_parse)]


class CommandOut(Schema):
    id: int
    guild_id: Snowflake
    name: str
    template: str
    aliases: list[str]
    author_id: Snowflake | None
    editor_ids: SnowflakeList
    created_at: datetime
    edited_at: datetime | None
    usage_count: int
    last_used_at: datetime | None
    cooldown_seconds: int
    cooldown_scope: str
    enabled: bool
    note: str
    allowed_role_ids: SnowflakeList = Field(description="Only members with one of these roles may use it (empty: anyone).")
    denied_role_ids: SnowflakeList = Field(description="Members with one of these roles may never use it; beats allowed.")
    allowed_channel_ids: SnowflakeList = Field(description="Only in these channels and their threads (empty: anywhere).")

    @staticmethod
    def resolve_aliases(obj: CustomCommand) -> list[str]:
        return sorted(alias.name for alias in obj.aliases.all())


class CommandPage(Schema):
    items: list[CommandOut]
    next_cursor: str | None


class CommandIn(RequestBody):
    name: NameText
    template: TemplateText
    author_id: DiscordId | None = None
    allowed_role_ids: RestrictionIds | None = None
    denied_role_ids: RestrictionIds | None = None
    allowed_channel_ids: RestrictionIds | None = None


class CommandPatch(RequestBody):
    template: TemplateText | None = None
    cooldown_seconds: CooldownSeconds | None = None
    cooldown_scope: Literal["member", "channel", "guild"] | None = None
    enabled: StrictBool | None = None  # 0 and 1 are numbers, not a yes or no
    note: NoteText | None = None
    editor_id: DiscordId | None = None
    allowed_role_ids: RestrictionIds | None = Field(None, description="Replaces the list; [] lifts it.")
    denied_role_ids: RestrictionIds | None = Field(None, description="Replaces the list; [] lifts it.")
    allowed_channel_ids: RestrictionIds | None = Field(None, description="Replaces the list; [] lifts it.")


def member_name_field():
    return Field(description='The member as the server shows them, then their @name ("Alice (@alice)").')


class BalanceOut(Schema):
    member_id: Snowflake
    balance: int
    member_name: str | None = member_name_field()

    @staticmethod
    def resolve_member_name(obj) -> str | None:
        return name_of(obj, "member", "member_id")


class BalancePage(Schema):
    items: list[BalanceOut]
    next_cursor: str | None


class StandingOut(Schema):
    member_id: Snowflake
    balance: int
    rank: int | None = Field(description="1 = most cookies; ties share a rank; null for a member with no count.")
    member_name: str | None = member_name_field()


class LeaderboardOut(Schema):
    page: int
    period: str = "all"
    items: list[StandingOut]


class LedgerOut(Schema):
    id: int
    giver_id: Snowflake | None
    receiver_id: Snowflake
    delta: int
    reason: str
    message_id: Snowflake | None
    created_at: datetime
    giver_name: str | None = Field(description='The giver ("Alice (@alice)"); null for an admin\'s change or a name not seen.')
    receiver_name: str | None = member_name_field()

    @staticmethod
    def resolve_giver_name(obj) -> str | None:
        return name_of(obj, "member", "giver_id", spec=LEDGER_NAMES)

    @staticmethod
    def resolve_receiver_name(obj) -> str | None:
        return name_of(obj, "member", "receiver_id", spec=LEDGER_NAMES)


class LedgerPage(Schema):
    items: list[LedgerOut]
    next_cursor: str | None


def _command_or_404(guild_id: int, name: str) -> CustomCommand:
    command = command_get(guild_id=guild_id, name=name)
    if command is None:
        raise HttpError(404, f"There is no command called `{name.lower()}`.")
    return command


@router.get("/guilds/{guild_id}/commands", response={200: CommandPage, **refusals(400)}, tags=["commands"])
@requires("commands.view_customcommand")
def commands_list(request: HttpRequest, guild_id: DiscordId, cursor: str | None = Cursor, limit: int = Limit):
    """The guild's commands by name, a page at a time."""
    rows = command_list(guild_id=guild_id).using(lag_tolerant_alias())
    page = paginate(rows, order=COMMAND_ORDER, cursor=cursor, limit=limit)
    prefetch_related_objects(page.items, "aliases")
    return page


@router.get("/guilds/{guild_id}/commands/{name}", response={200: CommandOut, **refusals(404)}, tags=["commands"])
@requires("commands.view_customcommand")
def commands_get(request: HttpRequest, guild_id: DiscordId, name: str = CommandName):
    """One command, by its name or an alias."""
    return _command_or_404(guild_id, name)


@router.post("/guilds/{guild_id}/commands", response={201: CommandOut, **refusals(400, 409)}, tags=["commands"])
@requires("commands.add_customcommand")
def commands_create(request: HttpRequest, guild_id: DiscordId, body: CommandIn):
    """Add a command; 409 when the name is taken by a command or an alias."""
    command = command_create(
        guild_id=guild_id,
        name=body.name,
        template=body.template,
        author_id=body.author_id,
        allowed_role_ids=body.allowed_role_ids,
        denied_role_ids=body.denied_role_ids,
        allowed_channel_ids=body.allowed_channel_ids,
    )
    logger.info("command %s created in guild %s through the API by %s", command.name, guild_id, getattr(request, "auth", None))
    return Status(201, command)


@router.patch("/guilds/{guild_id}/commands/{name}", response={200: CommandOut, **refusals(400, 404)}, tags=["commands"])
@requires("commands.change_customcommand")
def commands_update(request: HttpRequest, guild_id: DiscordId, body: CommandPatch, name: str = CommandName):
    """Change a command's reply, cooldown, enabled flag or restrictions (only the fields sent)."""
    command = _command_or_404(guild_id, name)
    command = command_update(
        guild_id=guild_id,
        name=command.name,
        template=body.template,
        cooldown_seconds=body.cooldown_seconds,
        cooldown_scope=body.cooldown_scope,
        enabled=body.enabled,
        note=body.note,
        editor_id=body.editor_id,
        allowed_role_ids=body.allowed_role_ids,
        denied_role_ids=body.denied_role_ids,
        allowed_channel_ids=body.allowed_channel_ids,
    )
    return command  # as committed, aliases read inside the transaction (no query after the commit)


@router.delete("/guilds/{guild_id}/commands/{name}", response={204: None, **refusals(404)}, tags=["commands"])
@requires("commands.delete_customcommand")
def commands_delete(request: HttpRequest, guild_id: DiscordId, name: str = CommandName):
    """Delete a command (by its name or an alias) with its aliases."""
    deleted = command_delete(guild_id=guild_id, name=name)
    logger.info("command %s deleted in guild %s through the API by %s", deleted, guild_id, getattr(request, "auth", None))
    return Status(204, None)


@router.get("/guilds/{guild_id}/cookies/balances", response={200: BalancePage, **refusals(400)}, tags=["cookies"])
@requires("commands.view_cookiebalance")
def cookies_balances(request: HttpRequest, guild_id: DiscordId, cursor: str | None = Cursor, limit: int = Limit):
    """Members' counts in leaderboard order (most first, ties by member id), a page at a time."""
    rows = CookieBalance.objects.using(lag_tolerant_alias()).filter(guild_id=guild_id)
    page = paginate(rows, order=BALANCE_ORDER, cursor=cursor, limit=limit)
    attach_names(page.items, [("member", "member_id")])
    return page


@router.get("/guilds/{guild_id}/cookies/balances/{member_id}", response={200: StandingOut, **refusals()}, tags=["cookies"])
@requires("commands.view_cookiebalance")
def cookies_standing(request: HttpRequest, guild_id: DiscordId, member_id: DiscordId):
    """One member's count and rank."""
    standing = cookie_standing(guild_id=guild_id, member_id=member_id)
    return {**vars(standing), "member_name": name_of(standing, "member", "member_id", guild_id=guild_id)}


@router.get("/guilds/{guild_id}/cookies/leaderboard", response={200: LeaderboardOut, **refusals()}, tags=["cookies"])
@requires("commands.view_cookiebalance")
def cookies_leaderboard(
    request: HttpRequest,
    guild_id: DiscordId,
    page: int = Query(1, ge=1, le=10_000),
    period: Literal["all", "7d", "30d"] = Query("all", description="All time, or the last 7 or 30 days."),
):
    """One page (10 members) of a toplist, as `/cookies top` shows it; members who left are left out."""
    items = cookie_leaderboard(guild_id=guild_id, page=page, period=period)
    names = directory_names(members=[(guild_id, s.member_id) for s in items])
    return {
        "page": page,
        "period": period,
        "items": [{**vars(s), "member_name": names.member(guild_id, s.member_id) or None} for s in items],
    }


@router.get("/guilds/{guild_id}/cookies/ledger", response={200: LedgerPage, **refusals(400)}, tags=["cookies"])
@requires("commands.view_cookieledger")
def cookies_ledger(
    request: HttpRequest,
    guild_id: DiscordId,
    member_id: DiscordId | None = Query(None, description="Only changes received by this member."),
    cursor: str | None = Cursor,
    limit: int = Limit,
):
    """Every change of a count, newest first, a page at a time."""
    rows = cookie_ledger(guild_id=guild_id, member_id=member_id).using(lag_tolerant_alias())
    page = paginate(rows, order=LEDGER_ORDER, cursor=cursor, limit=limit)
    attach_names(page.items, LEDGER_NAMES)
    return page


# Setting counts and cookie roles (commands/api_cookies.py), under the same /guilds/{guild_id}/cookies paths.
cookie_routes_register(router)
