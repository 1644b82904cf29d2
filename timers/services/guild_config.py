"""Per-guild timer configuration: admin role, warning thresholds, allowed roles, reports."""

from __future__ import annotations

from datetime import datetime, timedelta

from django.db import IntegrityError, transaction
from django.utils import timezone

from config.database import retry_transient
from config.numbers import is_int
from timers.errors import TimerError
from timers.models import AllowedRole, RoleReport, TimedRole, TimerSettings, TimerState
from timers.services.warnings import warnings_schedule

MAX_THRESHOLDS = 5
MAX_THRESHOLD_MINUTES = 7 * 1440
MIN_REPORT_MINUTES = 60
MAX_REPORT_MINUTES = 30 * 1440


def timer_settings_get(guild_id: int) -> TimerSettings:
    """The guild's timer settings; an unsaved row with the defaults when it never changed any."""
    found = TimerSettings.objects.filter(guild_id=guild_id).first()
    return found if found is not None else TimerSettings(guild_id=guild_id)


@retry_transient()
def timer_settings_update(*, guild_id: int, admin_role_id: int | None) -> TimerSettings:
    """Set (or clear, with None) the role that may manage other members' timers."""
    if admin_role_id is not None and not is_int(admin_role_id, minimum=1):
        raise TimerError("The timer admin role must be a role id.")
    with transaction.atomic():
        settings, _ = TimerSettings.objects.select_for_update().get_or_create(guild_id=guild_id)
        settings.admin_role_id = admin_role_id
        settings.save()
    return settings


def timer_warning_minutes_clean(minutes: list[int]) -> list[int]:
    """The thresholds, largest first, or TimerError saying what is wrong (for forms too)."""
    if not isinstance(minutes, list | tuple) or not all(is_int(m, minimum=1, maximum=MAX_THRESHOLD_MINUTES) for m in minutes):
        raise TimerError(f"Warning times are whole minutes from 1 to {MAX_THRESHOLD_MINUTES}.")
    cleaned = sorted(set(minutes), reverse=True)
    if len(cleaned) > MAX_THRESHOLDS:
        raise TimerError(f"At most {MAX_THRESHOLDS} warning times.")
    return cleaned


@retry_transient()
def timer_warnings_set(*, guild_id: int, minutes: list[int], batch: int = 1000, now: datetime | None = None) -> list[int]:
    """Set the warning thresholds and move every active timer's next warning to match."""
    cleaned = timer_warning_minutes_clean(minutes)
    now = now or timezone.now()
    with transaction.atomic():
        settings, _ = TimerSettings.objects.select_for_update().get_or_create(guild_id=guild_id)
        previous = set(settings.warning_minutes)
        settings.warning_minutes = cleaned
        settings.save()
    # Reschedule live timers in batches so that no transaction holds many row locks for long.
    last_pk = 0
    while True:
        with transaction.atomic():
            chunk = list(
                TimedRole.objects.select_for_update()
                .filter(guild_id=guild_id, state=TimerState.ACTIVE, pk__gt=last_pk)
                .order_by("pk")[:batch]
            )
            if not chunk:
                return cleaned
            for timer in chunk:
                kept = {t for t in timer.warnings_sent if t in cleaned}
                # A new threshold the remaining time is already inside would fire late: count it as dealt with.
                expires_at = timer.expires_at
                passed = {t for t in cleaned if t not in previous and expires_at and expires_at - timedelta(minutes=t) <= now}
                timer.warnings_sent = sorted(kept | passed, reverse=True)
                warnings_schedule(timer, cleaned)
            TimedRole.objects.bulk_update(chunk, ["warnings_sent", "next_warn_at"])
            last_pk = chunk[-1].pk


@retry_transient()
def allowed_role_add(*, guild_id: int, role_id: int, actor_id: int | None) -> AllowedRole:
    """Allow timers to grant ``role_id`` (once any role is listed, only listed roles may be used)."""
    if not is_int(role_id, minimum=1):
        raise TimerError("A role is a role id.")
    try:
        with transaction.atomic():
            return AllowedRole.objects.create(guild_id=guild_id, role_id=role_id, added_by_id=actor_id)
    except IntegrityError:
        raise TimerError(f"<@&{role_id}> is already on the list.") from None


@retry_transient()
def allowed_role_remove(*, guild_id: int, role_id: int) -> None:
    deleted, _ = AllowedRole.objects.filter(guild_id=guild_id, role_id=role_id).delete()
    if not deleted:
        raise TimerError(f"<@&{role_id}> is not on the list.")


@retry_transient()
def report_set(*, guild_id: int, role_id: int, channel_id: int, interval_minutes: int, actor_id: int | None) -> RoleReport:
    """Post who holds ``role_id`` to ``channel_id`` every ``interval_minutes`` (creates or updates)."""
    if not is_int(interval_minutes, minimum=MIN_REPORT_MINUTES, maximum=MAX_REPORT_MINUTES):
        raise TimerError("A report runs every 1 hour to 30 days.")
    now = timezone.now()
    with transaction.atomic():
        report, _ = RoleReport.objects.select_for_update().get_or_create(
            guild_id=guild_id,
            role_id=role_id,
            channel_id=channel_id,
            defaults={"next_run_at": now + timedelta(minutes=interval_minutes), "created_by_id": actor_id},
        )
        report.interval_minutes = interval_minutes
        report.next_run_at = now + timedelta(minutes=interval_minutes)
        report.save()
    return report


@retry_transient()
def report_remove(*, guild_id: int, report_id: int) -> None:
    deleted, _ = RoleReport.objects.filter(guild_id=guild_id, pk=report_id).delete()
    if not deleted:
        raise TimerError(f"There is no report #{report_id} here.")
