"""API routes for timed roles: /api/v1/timers…

Changes go through the same services as the bot's `/timer` commands; after each one
the worker is asked (after commit) to make Discord match: grant the role, or take it
away for a cleared timer.
"""

from __future__ import annotations

import logging
from datetime import datetime, timedelta
from typing import Annotated, Literal

from django.http import HttpRequest
from django.utils import timezone
from ninja import Path, Query, Router, Schema, Status
from ninja.errors import HttpError
from pydantic import BeforeValidator, Field, WithJsonSchema

from config.api import refusals, requires
from config.api_fields import Cursor, DiscordId, Limit, NoNul, RequestBody, Seconds, Snowflake, minutes_as_text
from config.database import lag_tolerant_alias
from config.pagination import paginate
from guilds.api_names import attach_names, name_of
from timers.durations import format_duration, parse_duration
from timers.models import LIVE_STATES, TimedRole, TimerState
from timers.notify import timer_role_sync_later
from timers.services import TimerChange, timer_add, timer_clear, timer_pause, timer_resume, timer_set

logger = logging.getLogger(__name__)
router = Router(tags=["timers"])

TIMER_ORDER = ("-pk",)  # newest first
# The ids a timer shows by name, looked up for a whole page in one query.
TIMER_NAMES = (("guild", "guild_id"), ("member", "member_id"), ("role", "role_id"), ("channel", "warn_channel_id"))
TimerId = Path(..., ge=1, le=2**63 - 1)
DurationText = Annotated[
    str,
    Field(
        min_length=1,
        max_length=64,
        description="As in chat: `90` (minutes), `90m`, `24h`, `1d`, `2w`, `1d 12h 30m`; 1 minute to 365 days.",
        examples=["1d 12h"],
    ),
    BeforeValidator(minutes_as_text),
    NoNul,
    # A bare number is minutes, as in chat; the schema says so (1 minute to 365 days).
    WithJsonSchema(
        {
            "anyOf": [
                {"type": "string", "minLength": 1, "maxLength": 64, "pattern": "^[^\x00]*$"},
                {"type": "integer", "minimum": 1, "maximum": 365 * 24 * 60},
            ],
            "description": "As in chat: `90` (minutes), `90m`, `24h`, `1d`, `2w`, `1d 12h 30m`; 1 minute to 365 days.",
            "examples": ["1d 12h", 90],
        },
        mode="validation",
    ),
]


def duration_human(value: timedelta | None) -> str | None:
    """The short human form of a duration (``1d 12h 30m``), or None."""
    return format_duration(value) if value is not None else None


class TimerOut(Schema):
    id: int
    guild_id: Snowflake
    member_id: Snowflake
    role_id: Snowflake
    state: str
    expires_at: datetime | None
    paused_remaining: Seconds | None = Field(description="Seconds left on a paused timer.")
    pause_until: datetime | None = Field(description="A paused timer resumes by itself then.")
    pause_kind: str
    remaining: str | None = Field(description="Time left, in the chat's form (`1d 2h`); null once ended.")
    warn_channel_id: Snowflake | None
    issued_by_id: Snowflake | None
    created_at: datetime
    updated_at: datetime
    ended_at: datetime | None
    outcome: str
    guild_name: str | None = Field(description='The server\'s name ("My Server"); null if the bot has not seen it.')
    member_name: str | None = Field(
        description='The member as the server shows them, then their @name ("Alice (@alice)"); ", left" once they left.'
    )
    role_name: str | None = Field(description='The role ("@Booster"); "(deleted)" once it is gone.')
    warn_channel_name: str | None = Field(description='Where warnings go ("#general").')

    @staticmethod
    def resolve_guild_name(obj: TimedRole) -> str | None:
        return name_of(obj, "guild", "guild_id", spec=TIMER_NAMES)

    @staticmethod
    def resolve_member_name(obj: TimedRole) -> str | None:
        return name_of(obj, "member", "member_id", spec=TIMER_NAMES)

    @staticmethod
    def resolve_role_name(obj: TimedRole) -> str | None:
        return name_of(obj, "role", "role_id", spec=TIMER_NAMES)

    @staticmethod
    def resolve_warn_channel_name(obj: TimedRole) -> str | None:
        return name_of(obj, "channel", "warn_channel_id", spec=TIMER_NAMES)

    @staticmethod
    def resolve_remaining(obj: TimedRole) -> str | None:
        if obj.state == TimerState.PAUSED:
            return duration_human(obj.paused_remaining)
        if obj.state == TimerState.ACTIVE and obj.expires_at is not None:
            return duration_human(max(obj.expires_at - timezone.now(), timedelta(0)))
        return None


class TimerPage(Schema):
    items: list[TimerOut]
    next_cursor: str | None


class TimerCreate(RequestBody):
    guild_id: DiscordId
    member_id: DiscordId
    role_id: DiscordId
    duration: DurationText
    channel_id: DiscordId | None = Field(None, description="Where warnings go (else by DM).")


class TimerExtend(RequestBody):
    duration: DurationText
    channel_id: DiscordId | None = None


class TimerPause(RequestBody):
    duration: DurationText | None = Field(None, description="Resume by itself after this long; null = until resumed.")


def _live_timer(timer_id: int) -> TimedRole:
    """The timer, which must still be running or paused."""
    timer = TimedRole.objects.filter(pk=timer_id).first()
    if timer is None:
        raise HttpError(404, f"There is no timer #{timer_id}.")
    if timer.state not in LIVE_STATES:
        raise HttpError(409, f"Timer #{timer_id} has ended ({timer.state}); set a new one instead.")
    return timer


def _applied(request: HttpRequest, action: str, change: TimerChange) -> TimedRole:
    """Queue the change for Discord (after commit) and return the timer as stored."""
    timer_role_sync_later(change.timer.pk)
    logger.info("timer %s: %s through the API by %s", change.timer.pk, action, getattr(request, "auth", None))
    return TimedRole.objects.get(pk=change.timer.pk)


@router.get("/timers", response={200: TimerPage, **refusals(400)})
@requires("timers.view_timedrole")
def timers_list(
    request: HttpRequest,
    guild_id: DiscordId | None = Query(None),
    member_id: DiscordId | None = Query(None),
    role_id: DiscordId | None = Query(None),
    state: Literal["active", "paused", "expired", "cleared"] | None = Query(None),
    cursor: str | None = Cursor,
    limit: int = Limit,
):
    """Timers, newest first, filtered by guild, member, role and state; a page at a time."""
    rows = TimedRole.objects.using(lag_tolerant_alias()).all()
    filters = {"guild_id": guild_id, "member_id": member_id, "role_id": role_id, "state": state}
    rows = rows.filter(**{field: value for field, value in filters.items() if value is not None})
    page = paginate(rows, order=TIMER_ORDER, cursor=cursor, limit=limit)
    attach_names(page.items, TIMER_NAMES)
    return page


@router.get("/timers/{timer_id}", response={200: TimerOut, **refusals(404)})
@requires("timers.view_timedrole")
def timers_get(request: HttpRequest, timer_id: int = TimerId):
    """One timer, live or ended."""
    timer = TimedRole.objects.filter(pk=timer_id).first()
    if timer is None:
        raise HttpError(404, f"There is no timer #{timer_id}.")
    return timer


@router.post("/timers", response={200: TimerOut, 201: TimerOut, **refusals(400)})
@requires("timers.add_timedrole", "timers.change_timedrole")
def timers_create(request: HttpRequest, body: TimerCreate):
    """Give a member a role until now + duration (`/timer set`); replaces a live timer for it (200)."""
    change = timer_set(
        guild_id=body.guild_id,
        member_id=body.member_id,
        role_id=body.role_id,
        duration=parse_duration(body.duration),
        actor_id=None,
        channel_id=body.channel_id,
    )
    return Status(201 if change.created else 200, _applied(request, "set", change))


@router.post("/timers/{timer_id}/extend", response={200: TimerOut, **refusals(400, 404, 409)})
@requires("timers.change_timedrole")
def timers_extend(request: HttpRequest, body: TimerExtend, timer_id: int = TimerId):
    """Add time (`/timer add`); on a paused timer it goes onto the frozen remainder."""
    duration = parse_duration(body.duration)
    timer = _live_timer(timer_id)
    change = timer_add(
        guild_id=timer.guild_id,
        member_id=timer.member_id,
        role_id=timer.role_id,
        duration=duration,
        actor_id=None,
        channel_id=body.channel_id,
    )
    return _applied(request, "extended", change)


@router.post("/timers/{timer_id}/pause", response={200: TimerOut, **refusals(400, 404, 409)})
@requires("timers.change_timedrole")
def timers_pause(request: HttpRequest, body: TimerPause, timer_id: int = TimerId):
    """Freeze the remaining time; with `duration` it resumes by itself after that long (send `{}` for no deadline)."""
    duration = parse_duration(body.duration) if body.duration is not None else None
    timer = _live_timer(timer_id)
    change = timer_pause(
        guild_id=timer.guild_id, member_id=timer.member_id, role_id=timer.role_id, actor_id=None, duration=duration
    )
    return _applied(request, "paused", change)


@router.post("/timers/{timer_id}/resume", response={200: TimerOut, **refusals(400, 404, 409)})
@requires("timers.change_timedrole")
def timers_resume(request: HttpRequest, timer_id: int = TimerId):
    """Start the clock again: expiry = now + remainder."""
    timer = _live_timer(timer_id)
    change = timer_resume(guild_id=timer.guild_id, member_id=timer.member_id, role_id=timer.role_id, actor_id=None)
    return _applied(request, "resumed", change)


@router.post("/timers/{timer_id}/clear", response={200: TimerOut, **refusals(400, 404, 409)})
@requires("timers.change_timedrole")
def timers_clear(request: HttpRequest, timer_id: int = TimerId):
    """End the timer now; the worker takes the role away. The timer stays as history."""
    timer = _live_timer(timer_id)
    change = timer_clear(guild_id=timer.guild_id, member_id=timer.member_id, role_id=timer.role_id, actor_id=None)
    return _applied(request, "cleared", change)
