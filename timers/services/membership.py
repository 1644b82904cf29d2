"""Timed roles across a member's leaving and rejoining, and the guild's choices for it.

A member who leaves keeps their live timers: by the guild's ``on_leave`` they run on
(the sweep expires them as usual, with the outcome "member has left") or pause with the
``away`` pause kind until the member is back. A rejoin while a timer is live clears the
away mark (resuming an ``away`` pause with its remainder) and returns the timers whose
role the caller must give back; a timer that ended meanwhile is not live and gets nothing.

Both are idempotent: a repeated or duplicated gateway event (two processes on one shard,
a resume replaying events) finds nothing left to do. A rejoin is recognised once per
join (by the join time Discord sends), which also covers a leave the bot never saw.
"""

from __future__ import annotations

from datetime import datetime

from django.db import transaction
from django.utils import timezone

from config.database import lock_for_transaction, retry_transient
from config.numbers import is_int
from timers.errors import TimerError
from timers.models import LIVE_STATES, PauseKind, TimedRole, TimerEvent, TimerEventKind, TimerSettings, TimerState
from timers.services.guild_config import timer_settings_get
from timers.services.pauses import _pause
from timers.services.timed_roles import _activate, _event, _log

ON_LEAVE = ("run", "pause")
ON_ROLE_MISSING = ("restore", "pause")
NOTICE = ("off", "channel", "dm")


def _member_timers_locked(guild_id: int, member_id: int) -> list[TimedRole]:
    lock_for_transaction("timer-member", guild_id, member_id)
    rows = TimedRole.objects.select_for_update().filter(guild_id=guild_id, member_id=member_id, state__in=LIVE_STATES)
    return list(rows.order_by("pk"))


def member_leave_locked(timer: TimedRole, on_leave: str, now: datetime, detail: str = "") -> None:
    """Mark one locked live timer's member away (pausing it by ``on_leave``) and record LEAVE."""
    timer.away_since = now
    paused = on_leave == "pause" and timer.state == TimerState.ACTIVE and timer.ends_at > now
    if paused:
        _pause(timer, now, None, PauseKind.AWAY)
    timer.save()
    _event(timer, TimerEventKind.LEAVE, None, detail=detail or ("paused while away" if paused else "runs on while away"))
    _log(timer, "leave", "kept: the member left; it " + ("pauses until they are back" if paused else "runs on"), None, detail)


@retry_transient()
def timer_member_left(*, guild_id: int, member_id: int, now: datetime | None = None, detail: str = "") -> int:
    """The member left the guild: their live timers run on or pause (``on_leave``); how many were marked."""
    now = now or timezone.now()
    on_leave = timer_settings_get(guild_id).on_leave
    with transaction.atomic():
        marked = [t for t in _member_timers_locked(guild_id, member_id) if t.away_since is None]
        for timer in marked:
            member_leave_locked(timer, on_leave, now, detail)
    return len(marked)


def member_back_locked(timer: TimedRole, now: datetime, detail: str) -> bool:
    """Clear one locked timer's away mark (resuming an away pause); whether it still has time."""
    timer.away_since = None
    if timer.state == TimerState.PAUSED and timer.pause_kind == PauseKind.AWAY:
        _activate(timer, now + timer.frozen_remaining, now)
    timer.save()
    live = timer.state == TimerState.PAUSED or timer.ends_at > now
    if live:
        _event(timer, TimerEventKind.REJOIN, None, detail=detail)
        _log(timer, "rejoin", "still running: the member is back and gets the role again", None)
    return live


@retry_transient()
def timer_member_rejoined(
    *,
    guild_id: int,
    member_id: int,
    joined_at: datetime | None,
    held_role_ids: set[int] | frozenset[int] = frozenset(),
    now: datetime | None = None,
) -> list[TimedRole]:
    """The member joined again: the live timers whose role must be given back (each once per join)."""
    now = now or timezone.now()
    key = f"joined {joined_at.isoformat()}"[:300] if joined_at is not None else "joined"
    grants = []
    with transaction.atomic():
        for timer in _member_timers_locked(guild_id, member_id):
            if timer.away_since is None:
                # Not marked away: the leave happened while no bot was listening, or another
                # process handled this join first (it recorded the join's key).
                if joined_at is None or timer.role_id in held_role_ids:
                    continue
                if TimerEvent.objects.filter(timer=timer, kind=TimerEventKind.REJOIN, detail=key).exists():
                    continue
            if member_back_locked(timer, now, key) and timer.role_id not in held_role_ids:
                grants.append(timer)
    return grants


def _choice(value: str | None, allowed: tuple[str, ...], what: str) -> str | None:
    if value is None:
        return None
    cleaned = value.strip().lower() if isinstance(value, str) else ""
    if cleaned not in allowed:
        raise TimerError(f"{what} is one of {', '.join(f'`{a}`' for a in allowed)}, not `{str(value)[:40]}`.")
    return cleaned


@retry_transient()
def timer_membership_settings_set(
    *,
    guild_id: int,
    on_leave: str | None = None,
    on_role_missing: str | None = None,
    notice: str | None = None,
    notice_channel_id: int | None = None,
) -> TimerSettings:
    """Change what timers do when members leave, when roles go missing, and the grant notices.

    Arguments left None keep their value; ``notice="channel"`` needs ``notice_channel_id``.
    """
    on_leave = _choice(on_leave, ON_LEAVE, "On leave")
    on_role_missing = _choice(on_role_missing, ON_ROLE_MISSING, "On role missing")
    notice = _choice(notice, NOTICE, "Notice")
    if notice_channel_id is not None and not is_int(notice_channel_id, minimum=1):
        raise TimerError("The notice channel must be a channel id.")
    if notice == "channel" and notice_channel_id is None:
        raise TimerError("Say which channel the notices go to, like `notice channel #timers`.")
    with transaction.atomic():
        settings, _ = TimerSettings.objects.select_for_update().get_or_create(guild_id=guild_id)
        if on_leave is not None:
            settings.on_leave = on_leave
        if on_role_missing is not None:
            settings.on_role_missing = on_role_missing
        if notice is not None:
            settings.notice = notice
            settings.notice_channel_id = notice_channel_id if notice == "channel" else None
        settings.save()
    return settings
