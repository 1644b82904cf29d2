"""API routes for a server's timer settings: /api/v1/guilds/{guild_id}/timers/settings.

A PATCH changes only the fields it sends, through the services the dashboard's Timer
settings page uses (``timer_membership_settings_set``, ``timer_warnings_set``,
``timer_settings_update``). Every value is checked by the services' own rules before the
first of them writes, so a refused PATCH changes nothing.
"""

from __future__ import annotations

import logging
from datetime import datetime
from typing import Annotated, Literal

from django.http import HttpRequest
from ninja import Router, Schema
from ninja.errors import HttpError
from pydantic import BeforeValidator, Field, Strict

from config.api import refusals, requires
from config.api_fields import DiscordId, RequestBody, Snowflake, whole_number_parse
from guilds.api_names import name_of
from timers.models import TimerSettings
from timers.services import timer_settings_get, timer_settings_update, timer_warnings_set
from timers.services.guild_config import MAX_THRESHOLDS, timer_warning_minutes_clean
from timers.services.membership import timer_membership_settings_set

logger = logging.getLogger(__name__)
router = Router(tags=["timer settings"])

PATH = "/guilds/{guild_id}/timers/settings"
SETTINGS_NAMES = (("guild", "guild_id"), ("channel", "notice_channel_id"), ("role", "admin_role_id"))
MEMBERSHIP_FIELDS = ("on_leave", "on_role_missing", "notice", "notice_channel_id")
# Whole minutes; the service says which are allowed (1 minute to 7 days, at most five).
Minutes = Annotated[int, Strict(), BeforeValidator(whole_number_parse)]


class TimerSettingsOut(Schema):
    guild_id: Snowflake
    on_leave: str = Field(description="A member who leaves: their timers `run` on, or `pause` until they are back.")
    on_role_missing: str = Field(description="A timed role taken away by hand: `restore` it, or `pause` the timer.")
    notice: str = Field(description="Grant and extend notices: `off`, in a `channel`, or by `dm`.")
    notice_channel_id: Snowflake | None = Field(description="Where the notices go with `notice: channel`.")
    warning_minutes: list[int] = Field(description="Minutes before expiry at which a warning is sent, largest first.")
    admin_role_id: Snowflake | None = Field(description="May manage other members' timers (null: Manage Roles only).")
    updated_at: datetime | None = Field(description="Null while the server has never changed a default.")
    guild_name: str | None
    notice_channel_name: str | None = Field(description='"#timers"')
    admin_role_name: str | None = Field(description='"@Timer admins"')

    @staticmethod
    def resolve_guild_name(obj: TimerSettings) -> str | None:
        return name_of(obj, "guild", "guild_id", spec=SETTINGS_NAMES)

    @staticmethod
    def resolve_notice_channel_name(obj: TimerSettings) -> str | None:
        return name_of(obj, "channel", "notice_channel_id", spec=SETTINGS_NAMES)

    @staticmethod
    def resolve_admin_role_name(obj: TimerSettings) -> str | None:
        return name_of(obj, "role", "admin_role_id", spec=SETTINGS_NAMES)


class TimerSettingsPatch(RequestBody):
    on_leave: Literal["run", "pause"] | None = None
    on_role_missing: Literal["restore", "pause"] | None = None
    notice: Literal["off", "channel", "dm"] | None = None
    notice_channel_id: DiscordId | None = Field(None, description="With `notice: channel` (or to move a channel's notices).")
    warning_minutes: Annotated[list[Minutes], Field(max_length=50)] | None = Field(
        None, description=f"Whole minutes, at most {MAX_THRESHOLDS}; [] sends no warnings."
    )
    admin_role_id: DiscordId | None = Field(None, description="null clears it.")


def _membership_changes(guild_id: int, body: TimerSettingsPatch, sent: set[str]) -> dict:
    """The arguments of ``timer_membership_settings_set`` for the fields sent (none: no call)."""
    changes = {field: getattr(body, field) for field in MEMBERSHIP_FIELDS if field in sent}
    for field in ("on_leave", "on_role_missing", "notice"):
        if changes.get(field, "") is None:
            raise HttpError(400, f"{field} can't be null; leave it out to keep it.")
    if "notice_channel_id" in changes and "notice" not in changes:
        # The service sets the channel together with the mode: a channel alone moves channel notices.
        if timer_settings_get(guild_id).notice != "channel":
            raise HttpError(400, 'notice_channel_id goes with notice "channel"; send both.')
        changes["notice"] = "channel"
    return changes


def _read(guild_id: int) -> TimerSettings:
    settings = timer_settings_get(guild_id)
    if settings.pk is None:
        settings.updated_at = None  # an unsaved row: the defaults
    return settings


@router.get(PATH, response={200: TimerSettingsOut, **refusals()})
@requires("timers.view_timersettings")
def timers_settings_get(request: HttpRequest, guild_id: DiscordId):
    """The server's timer settings (the defaults while it changed none)."""
    return _read(guild_id)


@router.patch(PATH, response={200: TimerSettingsOut, **refusals(400)})
@requires("timers.change_timersettings")
def timers_settings_update(request: HttpRequest, guild_id: DiscordId, body: TimerSettingsPatch):
    """Change the fields sent: what timers do on leave and on a missing role, notices, warnings, the timer admin role."""
    sent = set(body.model_fields_set)
    if "warning_minutes" in sent and body.warning_minutes is None:
        raise HttpError(400, "warning_minutes can't be null; send [] for no warnings.")
    membership = _membership_changes(guild_id, body, sent)
    minutes = timer_warning_minutes_clean(body.warning_minutes) if body.warning_minutes is not None else None
    # Every check is made above (the membership service checks before it writes), so none of these refuses half-way.
    if membership:
        timer_membership_settings_set(guild_id=guild_id, **membership)
    if minutes is not None:
        timer_warnings_set(guild_id=guild_id, minutes=minutes)
    if "admin_role_id" in sent:
        timer_settings_update(guild_id=guild_id, admin_role_id=body.admin_role_id)
    if sent:
        logger.info("timer settings of %s changed through the API (%s)", guild_id, ", ".join(sorted(sent)))
    return _read(guild_id)
