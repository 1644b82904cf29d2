"""Columns of the timer admin pages: names from the directory, the time left, and search by name."""

from __future__ import annotations

from datetime import timedelta

from django.contrib import admin
from django.utils import timezone

from config.admin_tables import SearchKey
from guilds.admin_names import CHANNEL, GUILD, MEMBER, ROLE, guild_names, member_names, named, role_names
from timers.durations import format_duration
from timers.models import TimedRole, TimerState

member = named("member_id", MEMBER)
role = named("role_id", ROLE)
guild = named("guild_id", GUILD)
channel = named("channel_id", CHANNEL)
admin_role = named("admin_role_id", ROLE, "timer-admin role")
notice_channel = named("notice_channel_id", CHANNEL, "notice channel")
warn_channel = named("warn_channel_id", CHANNEL, "warning channel")

GUILD_KEY = SearchKey("guild_id", names=guild_names)
MEMBER_KEY = SearchKey("member_id", names=member_names)
ROLE_KEY = SearchKey("role_id", names=role_names)


@admin.display(description="time left")
def time_left(obj: TimedRole) -> str:
    """What is left of a live timer ("2h 5m", "3d (paused)"); a dash once it has ended."""
    if obj.state == TimerState.PAUSED and obj.paused_remaining is not None:
        return f"{format_duration(obj.paused_remaining)} (paused)"
    if obj.state == TimerState.ACTIVE and obj.expires_at is not None:
        left = obj.expires_at - timezone.now()
        return format_duration(left) if left > timedelta(0) else "expiring now"
    return "-"
