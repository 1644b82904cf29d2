"""The words of a grant notice: a timed role given or extended, with its end time (no discord here)."""

from __future__ import annotations

from timers.durations import format_duration
from timers.models import TimedRole, TimerEventKind, TimerSettings, TimerState

NOTICE_KINDS = (TimerEventKind.SET, TimerEventKind.ADD)


def timer_notice_text(timer: TimedRole, kind: str) -> str:
    """One line for the member: what happened and when the role ends (Discord timestamps)."""
    verb = "extended" if kind == TimerEventKind.ADD else "granted"
    who = f"<@{timer.member_id}>, your <@&{timer.role_id}> role was {verb}"
    if timer.state == TimerState.PAUSED:
        return f"🎟️ {who}; it is paused with {format_duration(timer.frozen_remaining)} left."
    ts = int(timer.ends_at.timestamp())
    return f"🎟️ {who}: it ends <t:{ts}:f> (<t:{ts}:R>)."


def timer_notice_wanted(settings: TimerSettings, kind: str) -> bool:
    """Whether the guild wants a notice for a change of this kind."""
    return kind in NOTICE_KINDS and (
        settings.notice == "dm" or (settings.notice == "channel" and bool(settings.notice_channel_id))
    )
