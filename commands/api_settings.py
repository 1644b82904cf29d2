"""API routes for a server's settings for commands and cookies: /api/v1/guilds/{guild_id}/settings.

A PATCH is one ``guild_settings_update`` with the fields sent (as ``/settings`` in chat and
the dashboard's Guild settings page): the service checks every value first, so a refused
PATCH changes nothing, and bumps the server's version after the commit so every bot
process picks the change up.
"""

from __future__ import annotations

import logging
from datetime import datetime
from typing import Annotated, Literal

from django.http import HttpRequest
from ninja import Router, Schema
from ninja.errors import HttpError
from pydantic import BeforeValidator, Field, Strict, StrictBool

from commands.models import GuildSettings
from commands.services.guild_settings import MAX_THANKS_WORDS, guild_settings_get, guild_settings_update
from config.api import refusals, requires
from config.api_fields import DiscordId, NoNul, RequestBody, Snowflake, whole_number_parse

logger = logging.getLogger(__name__)
router = Router(tags=["settings"])

PATH = "/guilds/{guild_id}/settings"
NULLABLE = {"manager_role_id", "cookie_daily_cap"}
# The service says which values are allowed; the schema only keeps out what is not a number at all.
WholeNumber = Annotated[int, Strict(), BeforeValidator(whole_number_parse)]
Text = Annotated[str, Field(max_length=64), NoNul]


class GuildSettingsOut(Schema):
    guild_id: Snowflake
    prefix: str
    manager_role_id: Snowflake | None = Field(description="May manage custom commands (with Manage Server).")
    cookie_pair_cooldown_seconds: int
    cookie_daily_cap: int | None = Field(description="Gives per giver per 24 hours; null: no cap.")
    cookie_message_cap: int
    cookie_allow_negative: bool
    cookie_dm_receiver: bool
    public_leaderboard: bool
    command_refusal: str = Field(description="A restricted command refuses with a short `reply`, or stays `silent`.")
    cookie_roles_keep_all: bool = Field(description="Keep every cookie role earned; false keeps only the highest.")
    thanks_enabled: bool = Field(description="'thanks @user' gives a cookie, under the ++ rules.")
    thanks_words: list[str] = Field(description="Phrases that count as thanks; [] means the defaults.")
    updated_at: datetime | None = Field(description="Null while the server has never changed a default.")


class GuildSettingsPatch(RequestBody):
    prefix: Text | None = None
    manager_role_id: DiscordId | None = Field(None, description="null clears it.")
    cookie_pair_cooldown_seconds: WholeNumber | None = Field(None, description="0 to 86400.")
    cookie_daily_cap: WholeNumber | None = Field(None, description="1 to 100000; null: no cap.")
    cookie_message_cap: WholeNumber | None = Field(None, description="1 to 25.")
    cookie_allow_negative: StrictBool | None = None
    cookie_dm_receiver: StrictBool | None = None
    public_leaderboard: StrictBool | None = None
    command_refusal: Literal["reply", "silent"] | None = None
    cookie_roles_keep_all: StrictBool | None = None
    thanks_enabled: StrictBool | None = None
    thanks_words: Annotated[list[Text], Field(max_length=MAX_THANKS_WORDS * 5)] | None = Field(
        None, description=f"Up to {MAX_THANKS_WORDS} phrases of 1 to 32 characters, no mentions or formatting; [] = the defaults."
    )


def _read(guild_id: int) -> GuildSettings:
    settings = guild_settings_get(guild_id)
    if settings.pk is None:
        settings.updated_at = None  # an unsaved row: the defaults
    return settings


@router.get(PATH, response={200: GuildSettingsOut, **refusals()})
@requires("commands.view_guildsettings")
def settings_get(request: HttpRequest, guild_id: DiscordId):
    """The server's settings for commands and cookies (the defaults while it changed none)."""
    return _read(guild_id)


@router.patch(PATH, response={200: GuildSettingsOut, **refusals(400)})
@requires("commands.change_guildsettings")
def settings_update(request: HttpRequest, guild_id: DiscordId, body: GuildSettingsPatch):
    """Change the fields sent (thanks, cookie roles' mode, refusals of restricted commands, the cookie rules, the prefix)."""
    changes = {field: getattr(body, field) for field in body.model_fields_set}
    for field, value in changes.items():
        if value is None and field not in NULLABLE:
            raise HttpError(400, f"{field} can't be null; leave it out to keep it.")
    if not changes:
        return _read(guild_id)
    settings = guild_settings_update(guild_id=guild_id, **changes)
    logger.info("settings of %s changed through the API (%s)", guild_id, ", ".join(sorted(changes)))
    return settings
