"""Timed roles: set, add, remove and clear (pauses are in timers.services.pauses).

Semantics (PRODUCT.md): set makes expiry now + d; add extends from max(expiry, now), and
on a paused timer goes onto the frozen remainder; remove subtracts and, at or below zero,
makes the timer due now; pause freezes the remainder, optionally until a deadline; resume
makes expiry now + remainder. Each change takes a per-(guild, member, role) lock and the
row lock, so two commands racing on one timer, or a command racing the sweep, serialize.

These functions change the database only; adding and removing the role on Discord is
done by the caller (the bot, or the timer engine for changes made elsewhere).
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime, timedelta

from django.db import transaction
from django.utils import timezone

from config.database import lock_for_transaction, retry_transient
from guilds.services.log import by, log_record
from timers.durations import MAX_DURATION, MIN_DURATION, format_duration
from timers.errors import InvalidDuration, RoleNotAllowed, TimerNotFound
from timers.models import LIVE_STATES, AllowedRole, TimedRole, TimerEvent, TimerEventKind, TimerState
from timers.services.guild_config import timer_settings_get
from timers.services.warnings import warnings_arm

BATCH = 500
MAX_REMAINING = timedelta(days=3650)  # about 10 years: the most time one timer may hold


@dataclass(frozen=True)
class TimerChange:
    """What a change did: the timer after it, and whether the role must now be granted."""

    timer: TimedRole
    created: bool = False

    @property
    def due_now(self) -> bool:
        """True when the change left no time (the sweep removes the role at once)."""
        return self.timer.state == TimerState.ACTIVE and self.timer.ends_at <= timezone.now()


def _check_duration(duration: timedelta) -> None:
    if not isinstance(duration, timedelta) or not MIN_DURATION <= duration <= MAX_DURATION:
        raise InvalidDuration("A duration must be between 1 minute and 365 days.")


def _check_role_allowed(guild_id: int, role_id: int) -> None:
    listed = AllowedRole.objects.filter(guild_id=guild_id)
    if listed.exists() and not listed.filter(role_id=role_id).exists():
        raise RoleNotAllowed(f"<@&{role_id}> is not on this server's list of timed roles.")


def _live_locked(guild_id: int, member_id: int, role_id: int) -> TimedRole | None:
    lock_for_transaction("timer", guild_id, member_id, role_id)
    return (
        TimedRole.objects.select_for_update()
        .filter(guild_id=guild_id, member_id=member_id, role_id=role_id, state__in=LIVE_STATES)
        .first()
    )


def _require_live(guild_id: int, member_id: int, role_id: int) -> TimedRole:
    timer = _live_locked(guild_id, member_id, role_id)
    if timer is None:
        raise TimerNotFound(f"<@{member_id}> has no timer for <@&{role_id}>.")
    return timer


def _thresholds(guild_id: int) -> list[int]:
    return list(timer_settings_get(guild_id).warning_minutes)


def _event(timer: TimedRole, kind: str, actor_id: int | None, seconds: timedelta | None = None, detail: str = "") -> None:
    TimerEvent.objects.create(
        timer=timer,
        kind=kind,
        actor_id=actor_id,
        seconds=int(seconds.total_seconds()) if seconds is not None else None,
        detail=detail,
    )


def _log(timer: TimedRole, kind: str, what: str, actor_id: int | None, detail: str = "") -> None:
    """The activity-log entry for a change to one timer, in the change's transaction."""
    text = f"<@{timer.member_id}>'s <@&{timer.role_id}> timer {what}{by(actor_id)}" + (f" ({detail})" if detail else "")
    log_record(
        guild_id=timer.guild_id,
        kind=f"timer.{kind}",
        text=text,
        actor_id=actor_id,
        member_id=timer.member_id,
        role_id=timer.role_id,
    )


def _start_clean(timer: TimedRole) -> None:
    """Forget the sweep's claims and the last run's failed removals: a new run starts clean."""
    timer.lease_until, timer.lease_owner = None, ""
    timer.warn_lease_until, timer.warn_lease_owner = None, ""
    timer.attempts = 0
    timer.outcome, timer.outcome_detail = "", ""


def _activate(timer: TimedRole, expires_at: datetime, now: datetime, thresholds: list[int] | None = None) -> None:
    """Give the timer a new run that ends at ``expires_at``."""
    timer.state = TimerState.ACTIVE
    timer.expires_at = expires_at
    timer.paused_remaining = None
    timer.pause_until = None
    timer.pause_kind = ""
    _start_clean(timer)
    warnings_arm(timer, thresholds if thresholds is not None else _thresholds(timer.guild_id), now)


def _check_cap(remaining: timedelta) -> None:
    # Repeated adds have no other bound; past this a timer is a mistake, not a plan.
    if remaining > MAX_REMAINING:
        raise InvalidDuration(
            f"A timer can hold at most {MAX_REMAINING.days // 365} years; this would leave {format_duration(remaining)}."
        )


@retry_transient()
def timer_set(
    *,
    guild_id: int,
    member_id: int,
    role_id: int,
    duration: timedelta,
    actor_id: int | None,
    channel_id: int | None = None,
    now: datetime | None = None,
    detail: str = "",
) -> TimerChange:
    """Give ``member_id`` the role until now + ``duration`` (replacing any live timer for it).

    ``detail`` goes on the SET event (a bulk change names its job there).
    """
    _check_duration(duration)
    _check_role_allowed(guild_id, role_id)
    now = now or timezone.now()
    with transaction.atomic():
        timer = _live_locked(guild_id, member_id, role_id)
        return _set_locked(timer, guild_id, member_id, role_id, duration, actor_id, channel_id, now, detail)


def _set_locked(
    timer: TimedRole | None,
    guild_id: int,
    member_id: int,
    role_id: int,
    duration: timedelta,
    actor_id: int | None,
    channel_id: int | None,
    now: datetime,
    detail: str = "",
) -> TimerChange:
    created = timer is None
    if timer is None:
        timer = TimedRole(guild_id=guild_id, member_id=member_id, role_id=role_id)
    timer.issued_by_id = actor_id
    if channel_id is not None:
        timer.warn_channel_id = channel_id
    _activate(timer, now + duration, now)
    timer.save()
    _event(timer, TimerEventKind.SET, actor_id, duration, detail)
    _log(timer, "set", f"set to {format_duration(duration)}", actor_id, detail)
    return TimerChange(timer=timer, created=created)


@retry_transient()
def timer_add(
    *,
    guild_id: int,
    member_id: int,
    role_id: int,
    duration: timedelta,
    actor_id: int | None,
    channel_id: int | None = None,
    now: datetime | None = None,
) -> TimerChange:
    """Add time; starts a timer when there is none. Paused timers keep the time on their remainder."""
    _check_duration(duration)
    now = now or timezone.now()
    with transaction.atomic():
        timer = _live_locked(guild_id, member_id, role_id)
        if timer is None:
            _check_role_allowed(guild_id, role_id)
            return _set_locked(None, guild_id, member_id, role_id, duration, actor_id, channel_id, now)
        if channel_id is not None:
            timer.warn_channel_id = channel_id
        if timer.state == TimerState.PAUSED:
            _check_cap(timer.frozen_remaining + duration)
            timer.paused_remaining = timer.frozen_remaining + duration
            warnings_arm(timer, _thresholds(guild_id), now)
        else:
            expires_at = max(timer.ends_at, now) + duration
            _check_cap(expires_at - now)
            _activate(timer, expires_at, now)
        timer.save()
        _event(timer, TimerEventKind.ADD, actor_id, duration)
        _log(timer, "add", f"extended by {format_duration(duration)}", actor_id)
    return TimerChange(timer=timer)


@retry_transient()
def timer_remove(
    *, guild_id: int, member_id: int, role_id: int, duration: timedelta, actor_id: int | None, now: datetime | None = None
) -> TimerChange:
    """Take time off; at or below zero the timer is due now (and a paused one resumes to expire)."""
    _check_duration(duration)
    now = now or timezone.now()
    with transaction.atomic():
        timer = _require_live(guild_id, member_id, role_id)
        if timer.state == TimerState.PAUSED:
            left = timer.frozen_remaining - duration
            if left > timedelta(0):
                timer.paused_remaining = left
                warnings_arm(timer, _thresholds(guild_id), now)
            else:
                _activate(timer, now, now)
        else:
            _activate(timer, max(timer.ends_at - duration, now), now)
        timer.save()
        _event(timer, TimerEventKind.REMOVE, actor_id, duration)
        _log(timer, "remove", f"shortened by {format_duration(duration)}", actor_id)
    return TimerChange(timer=timer)


@retry_transient()
def timer_clear(*, guild_id: int, member_id: int, role_id: int, actor_id: int | None, detail: str = "") -> TimerChange:
    """End a timer early; the caller takes the role away. The row stays as history (``detail`` on its event)."""
    with transaction.atomic():
        timer = _require_live(guild_id, member_id, role_id)
        timer.state = TimerState.CLEARED
        timer.ended_at = timezone.now()
        timer.next_warn_at = None
        timer.pause_until = None
        timer.save()
        _event(timer, TimerEventKind.CLEAR, actor_id, detail=detail)
        _log(timer, "clear", "cleared", actor_id, detail)
    return TimerChange(timer=timer)
