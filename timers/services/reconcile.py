"""Reconciliation: a guild's live timers checked against its members' real roles.

The bot fetches the member list through Discord's REST API (paced) and hands each page
here. A live timer whose role was taken away by hand is recorded (ROLE_MISSING) and, by
the guild's ``on_role_missing``, its role given back (the caller grants it, then records
RESTORE) or the timer paused with the ``role_missing`` pause kind (resumed when the role
is back). A member no longer in the guild is treated as having left. Roles held with no
live timer are only counted: nothing is removed on a guess.

``TimerReconcile`` keeps when each guild was last done, so that a restart redoes only
the guilds that are due, and its lease lets one process at a time work on a guild.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import datetime, timedelta

from django.conf import settings
from django.db import IntegrityError, transaction
from django.db.models import Q
from django.utils import timezone

from config.database import retry_transient
from guilds.services.log import log_record
from timers.models import PauseKind, TimedRole, TimerEventKind, TimerReconcile, TimerState
from timers.services.guild_config import timer_settings_get
from timers.services.membership import _member_timers_locked, member_back_locked, member_leave_locked
from timers.services.pauses import _pause
from timers.services.timed_roles import _activate, _event, _log

LEASE = timedelta(minutes=15)  # far more than a guild of 100,000 members takes at 5 pages a second


def _due_before(now: datetime) -> datetime:
    return now - timedelta(hours=settings.RECONCILE_HOURS)


@retry_transient()
def reconcile_claim(*, guild_id: int, owner: str, now: datetime | None = None) -> bool:
    """Take the guild's reconciliation if it is due and nobody is working on it; whether taken."""
    now = now or timezone.now()
    try:
        with transaction.atomic():
            TimerReconcile.objects.get_or_create(guild_id=guild_id)
    except IntegrityError:
        pass  # another process created it first
    due = Q(finished_at__isnull=True) | Q(finished_at__lte=_due_before(now))
    free = Q(lease_until__isnull=True) | Q(lease_until__lte=now)
    with transaction.atomic():
        taken = TimerReconcile.objects.filter(due & free, guild_id=guild_id).update(
            lease_until=now + LEASE, lease_owner=owner[:32], started_at=now
        )
    return taken == 1


@dataclass(frozen=True)
class Restore:
    """A role to give back: the timer, member and role."""

    timer_id: int
    member_id: int
    role_id: int
    why: str


@dataclass
class PageResult:
    """What one page of members changed, and the roles the caller must give back."""

    restores: list[Restore] = field(default_factory=list)
    paused: int = 0
    resumed: int = 0
    back: int = 0


def _seen_locked(timer: TimedRole, roles: set[int], on_role_missing: str, now: datetime, out: PageResult) -> None:
    held = timer.role_id in roles
    if timer.away_since is not None:  # back in the guild, and the bot never saw the join
        if member_back_locked(timer, now, "found back by reconciliation") and not held:
            out.restores.append(Restore(timer.pk, timer.member_id, timer.role_id, "rejoin"))
        out.back += 1
        return
    if held:
        if timer.state == TimerState.PAUSED and timer.pause_kind == PauseKind.ROLE_MISSING:
            _activate(timer, now + timer.frozen_remaining, now)  # the role was given back by hand
            timer.save()
            _event(timer, TimerEventKind.RESUME, None, detail="the role is back")
            _log(timer, "resume", "resumed: the role is back", None)
            out.resumed += 1
        return
    if timer.state == TimerState.ACTIVE and timer.ends_at <= now:
        return  # due: the sweep is taking the role anyway
    if timer.state == TimerState.PAUSED and timer.pause_kind == PauseKind.ROLE_MISSING:
        return  # already recorded and paused
    if on_role_missing == "restore":
        _event(timer, TimerEventKind.ROLE_MISSING, None, detail="giving it back")
        _log(timer, "role_missing", "found without its role (taken away by hand): giving it back", None)
        out.restores.append(Restore(timer.pk, timer.member_id, timer.role_id, "restore"))
    elif timer.state == TimerState.ACTIVE:
        _pause(timer, now, None, PauseKind.ROLE_MISSING)
        timer.save()
        _event(timer, TimerEventKind.ROLE_MISSING, None, detail="paused until the role is back")
        _log(timer, "role_missing", "found without its role (taken away by hand): paused until it is back", None)
        out.paused += 1


@retry_transient()
def reconcile_members_seen(*, guild_id: int, members: dict[int, set[int]], now: datetime | None = None) -> PageResult:
    """Compare members present in the guild (id -> role ids) with their live timers."""
    now = now or timezone.now()
    on_role_missing = timer_settings_get(guild_id).on_role_missing
    out = PageResult()
    with transaction.atomic():
        for member_id in sorted(members):
            for timer in _member_timers_locked(guild_id, member_id):
                _seen_locked(timer, members[member_id], on_role_missing, now, out)
    return out


@retry_transient()
def reconcile_members_gone(*, guild_id: int, member_ids: list[int], now: datetime | None = None) -> int:
    """Members with live timers who are not in the guild: they left (leave semantics); how many timers."""
    now = now or timezone.now()
    on_leave = timer_settings_get(guild_id).on_leave
    marked = 0
    with transaction.atomic():
        for member_id in sorted(member_ids):
            for timer in _member_timers_locked(guild_id, member_id):
                if timer.away_since is None:
                    member_leave_locked(timer, on_leave, now, "found gone by reconciliation")
                    marked += 1
    return marked


@retry_transient()
def reconcile_restore_record(*, timer_id: int, done: bool, detail: str = "") -> None:
    """Record a role given back (RESTORE), or why Discord refused it (the next run tries again)."""
    with transaction.atomic():
        timer = TimedRole.objects.filter(pk=timer_id).first()
        if timer is not None:
            _event(timer, TimerEventKind.RESTORE, None, detail="role given back" if done else f"refused: {detail}"[:300])


@retry_transient()
def reconcile_finish(
    *,
    guild_id: int,
    owner: str,
    checked: int,
    restored: int,
    paused: int,
    away: int,
    untracked: int,
    detail: str = "",
    now: datetime | None = None,
) -> bool:
    """Store the run's figures and free the guild until it is due again; False if the lease was lost."""
    now = now or timezone.now()
    with transaction.atomic():
        if untracked:  # reported, never removed: an admin decides
            log_record(
                guild_id=guild_id,
                kind="timer.reconcile",
                text=f"Reconciliation: {untracked} timed role(s) held with no running timer; not removed",
            )
        return (
            TimerReconcile.objects.filter(guild_id=guild_id, lease_owner=owner[:32]).update(
                finished_at=now,
                lease_until=None,
                lease_owner="",
                checked=checked,
                restored=restored,
                paused=paused,
                away=away,
                untracked=untracked,
                detail=detail[:300],
            )
            == 1
        )


@retry_transient()
def reconcile_release(*, guild_id: int, owner: str, detail: str) -> None:
    """Give the guild back unfinished (Discord failed, the bot is stopping): due again at once."""
    with transaction.atomic():
        TimerReconcile.objects.filter(guild_id=guild_id, lease_owner=owner[:32]).update(
            lease_until=None, lease_owner="", detail=detail[:300]
        )
