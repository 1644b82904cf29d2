"""API routes for the activity log: /api/v1/guilds/{guild_id}/log (mounted by ops/api.py).

The same entries as the dashboard's Activity log and the log channel: newest first, a
page at a time, narrowed to one kind (the index ``log_guild_kind``) or to failures
(``log_guild_failed``). Each entry carries its text as stored (with mentions, as Discord
renders them) and with names instead of mentions, and the names of its ids; a page costs
two queries for names, however many entries it has.
"""

from __future__ import annotations

from datetime import datetime

from django.http import HttpRequest
from ninja import Query, Router, Schema
from pydantic import Field

from config.api import refusals, requires
from config.api_fields import Cursor, DiscordId, Limit, Snowflake
from config.database import lag_tolerant_alias
from config.pagination import paginate
from guilds.api_names import attach_names, name_of
from guilds.log_selectors import log_entries_recent, log_texts_named
from guilds.models import LogEntry

router = Router(tags=["activity log"])

LOG_ORDER = ("-pk",)  # newest first: log_guild_recent, log_guild_kind, log_guild_failed
LOG_NAMES = (("guild", "guild_id"), ("member", "actor_id"), ("member", "member_id"), ("role", "role_id"))
KIND_PATTERN = r"^[a-z_]{1,15}\.[a-z_]{1,16}$"


class LogEntryOut(Schema):
    id: int
    guild_id: Snowflake
    kind: str = Field(description="For instance `timer.set`, `timer.expire_failed`, `cookie.reset`, `command.edit`.")
    text: str = Field(description="What happened, with Discord mentions (`<@id>`, `<@&id>`, `<#id>`).")
    text_named: str = Field(description="The same with the names the bot knows instead of the mentions.")
    failed: bool
    actor_id: Snowflake | None = Field(description="Who asked; null for the bot itself.")
    member_id: Snowflake | None = Field(description="The member it was about.")
    role_id: Snowflake | None
    created_at: datetime
    posted_at: datetime | None = Field(description="When it went to the log channel (or was kept back: see post_outcome).")
    post_outcome: str = Field(description="`posted`, `no_channel`, `forbidden`, `gone`; empty while waiting.")
    guild_name: str | None
    actor_name: str | None = Field(description='"Alice (@alice)"')
    member_name: str | None
    role_name: str | None = Field(description='"@Booster"')

    @staticmethod
    def resolve_text_named(obj: LogEntry) -> str:
        texts = getattr(obj, "_texts_named", None)
        return texts.get(obj.pk, obj.text) if texts is not None else log_texts_named([obj])[obj.pk]

    @staticmethod
    def resolve_guild_name(obj: LogEntry) -> str | None:
        return name_of(obj, "guild", "guild_id", spec=LOG_NAMES)

    @staticmethod
    def resolve_actor_name(obj: LogEntry) -> str | None:
        return name_of(obj, "member", "actor_id", spec=LOG_NAMES)

    @staticmethod
    def resolve_member_name(obj: LogEntry) -> str | None:
        return name_of(obj, "member", "member_id", spec=LOG_NAMES)

    @staticmethod
    def resolve_role_name(obj: LogEntry) -> str | None:
        return name_of(obj, "role", "role_id", spec=LOG_NAMES)


class LogPage(Schema):
    items: list[LogEntryOut]
    next_cursor: str | None


@router.get("/guilds/{guild_id}/log", response={200: LogPage, **refusals(400)})
@requires("guilds.view_logentry")
def log_list(
    request: HttpRequest,
    guild_id: DiscordId,
    kind: str | None = Query(None, pattern=KIND_PATTERN, description="Only this kind, like `timer.expire_failed`."),
    failed: bool | None = Query(None, description="true: only failures; false: only what went well."),
    cursor: str | None = Cursor,
    limit: int = Limit,
):
    """The server's activity log, newest first: what the bot did and who asked; a page at a time."""
    rows = log_entries_recent(guild_id=guild_id).using(lag_tolerant_alias())
    if kind is not None:
        rows = rows.filter(kind=kind)
    if failed is not None:
        rows = rows.filter(failed=failed)
    page = paginate(rows, order=LOG_ORDER, cursor=cursor, limit=limit)
    attach_names(page.items, LOG_NAMES)
    texts = log_texts_named(page.items)
    for entry in page.items:
        entry._texts_named = texts  # type: ignore[attr-defined]
    return page
