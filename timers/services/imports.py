"""Writes for imports from other bots: timers keyed by (guild, member, role), allowed roles.

Each returns what it did ("imported", "updated", "unchanged"); with ``dry_run`` it only
says what it would do. An imported timer's first event is an ``import`` event whose
detail ends in a fingerprint of what was imported, so that a second run finds it even
after the sweep has expired it.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import datetime, timedelta

from django.db import IntegrityError, transaction

from config.numbers import is_int
from timers.errors import TimerError
from timers.models import AllowedRole, PauseKind, TimedRole, TimerEvent, TimerEventKind, TimerState
from timers.services.timed_roles import _live_locked, _start_clean, _thresholds
from timers.services.warnings import warnings_arm, warnings_schedule

IMPORTED, UPDATED, UNCHANGED = "imported", "updated", "unchanged"
_SNOWFLAKE_MAX = 2**63 - 1


@dataclass(frozen=True)
class TimerImport:
    """One timer as another bot held it: running until ``expires_at``, or paused with a remainder."""

    member_id: int
    role_id: int
    expires_at: datetime | None = None
    paused_remaining: timedelta | None = None
    pause_until: datetime | None = None
    pause_kind: str = ""
    warn_channel_id: int | None = None
    warnings_sent: list[int] = field(default_factory=list)
    issued_by_id: int | None = None

    @property
    def paused(self) -> bool:
        return self.paused_remaining is not None


def _check(spec: TimerImport) -> None:
    for label, value in (("member", spec.member_id), ("role", spec.role_id)):
        if not is_int(value, minimum=1, maximum=_SNOWFLAKE_MAX):
            raise TimerError(f"The {label} is not a Discord id.")
    if spec.paused == (spec.expires_at is not None):
        raise TimerError("A timer either runs until an expiry or is paused with a remainder.")
    if spec.paused_remaining is not None and spec.paused_remaining < timedelta(0):
        raise TimerError("A paused timer's remaining time can't be negative.")
    if spec.pause_kind and spec.pause_kind not in PauseKind.values:
        raise TimerError(f"Unknown pause kind {spec.pause_kind!r}.")


def _apply(timer: TimedRole, spec: TimerImport, thresholds: list[int], now: datetime) -> None:
    timer.issued_by_id = spec.issued_by_id
    timer.warn_channel_id = spec.warn_channel_id
    _start_clean(timer)
    if spec.paused:
        timer.state, timer.expires_at = TimerState.PAUSED, None
        timer.paused_remaining, timer.pause_until = spec.paused_remaining, spec.pause_until
        timer.pause_kind = spec.pause_kind or PauseKind.MEMBER
    else:
        timer.state, timer.expires_at = TimerState.ACTIVE, spec.expires_at
        timer.paused_remaining, timer.pause_until, timer.pause_kind = None, None, ""
    # Thresholds the remaining time is already inside count as dealt with (as for our own
    # timers); on top of those, what the other bot sent stays sent, so none is sent again.
    warnings_arm(timer, thresholds, now)
    sent = set(timer.warnings_sent) | {t for t in spec.warnings_sent if t in thresholds}
    timer.warnings_sent = sorted(sent, reverse=True)
    warnings_schedule(timer, thresholds)


def timer_import(*, guild_id: int, spec: TimerImport, detail: str, fingerprint: str, now: datetime, dry_run: bool = False) -> str:
    """Bring one timer in: create it, update the one an earlier run imported, or leave it as it is.

    A live timer for the same member and role that was changed here since it was
    imported (or never was imported) is left alone, and the row refused with the reason.
    """
    _check(spec)
    key = {"timer__guild_id": guild_id, "timer__member_id": spec.member_id, "timer__role_id": spec.role_id}
    marker = f"[{fingerprint}]"
    with transaction.atomic():
        timer = _live_locked(guild_id, spec.member_id, spec.role_id)
        if TimerEvent.objects.filter(kind=TimerEventKind.IMPORT, detail__endswith=marker, **key).exists():
            return UNCHANGED
        outcome = IMPORTED
        if timer is not None:
            last = TimerEvent.objects.filter(timer=timer).order_by("-created_at", "-pk").values_list("kind", flat=True).first()
            if last != TimerEventKind.IMPORT:
                raise TimerError(
                    f"member {spec.member_id} already has a live timer for role {spec.role_id} here, "
                    "changed since any import; left as it is"
                )
            outcome = UPDATED
        if dry_run:
            return outcome
        if timer is None:
            timer = TimedRole(guild_id=guild_id, member_id=spec.member_id, role_id=spec.role_id)
        _apply(timer, spec, _thresholds(guild_id), now)
        timer.save()
        TimerEvent.objects.create(
            timer=timer, kind=TimerEventKind.IMPORT, actor_id=spec.issued_by_id, detail=f"{detail} {marker}"[-300:]
        )
    return outcome


def allowed_role_import(*, guild_id: int, role_id: int, dry_run: bool = False) -> str:
    """Put ``role_id`` on the guild's list of timed roles unless it is there already."""
    if not is_int(role_id, minimum=1, maximum=_SNOWFLAKE_MAX):
        raise TimerError("A role is a role id.")
    if AllowedRole.objects.filter(guild_id=guild_id, role_id=role_id).exists():
        return UNCHANGED
    if dry_run:
        return IMPORTED
    try:
        with transaction.atomic():
            AllowedRole.objects.create(guild_id=guild_id, role_id=role_id)
    except IntegrityError:
        return UNCHANGED
    return IMPORTED
