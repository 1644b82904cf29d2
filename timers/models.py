"""Timed roles: a role held for a duration, paused and resumed, warned about and removed."""

from __future__ import annotations

from datetime import datetime, timedelta

from django.db import models
from django.db.models import Q

from guilds.models import named, names_attached

DEFAULT_WARNING_MINUTES = [60, 10, 1]


def default_warning_minutes() -> list[int]:
    return list(DEFAULT_WARNING_MINUTES)


class TimerSettings(models.Model):
    """Per-guild timer settings; a missing row means the defaults."""

    guild_id = models.BigIntegerField(unique=True)
    admin_role_id = models.BigIntegerField(null=True, blank=True, help_text="May manage other members' timers.")
    warning_minutes = models.JSONField(
        default=default_warning_minutes, help_text="Minutes before expiry at which a warning is sent."
    )
    on_leave = models.CharField(
        max_length=8,
        choices=[("run", "keeps running"), ("pause", "pauses until they rejoin")],
        default="run",
        help_text="What a live timer does while its member is away from the guild.",
    )
    on_role_missing = models.CharField(
        max_length=8,
        choices=[("restore", "give the role back"), ("pause", "pause the timer")],
        default="restore",
        help_text="What reconciliation does with a live timer whose role was taken away by hand.",
    )
    notice = models.CharField(
        max_length=8,
        choices=[("off", "off"), ("channel", "in a channel"), ("dm", "by DM")],
        default="off",
        help_text="Tell the member when a timed role is granted or extended, with its end time.",
    )
    notice_channel_id = models.BigIntegerField(null=True, blank=True)
    updated_at = models.DateTimeField(auto_now=True)

    class Meta:
        verbose_name = "timer settings"
        verbose_name_plural = "timer settings"

    def __str__(self) -> str:
        return named(self, "guild", self.guild_id)


class AllowedRole(models.Model):
    """A role that timers may grant in a guild. A guild with none listed allows any role."""

    guild_id = models.BigIntegerField()
    role_id = models.BigIntegerField()
    added_by_id = models.BigIntegerField(null=True, blank=True)
    created_at = models.DateTimeField(auto_now_add=True)

    class Meta:
        constraints = [models.UniqueConstraint(fields=["guild_id", "role_id"], name="allowed_role_unique")]

    def __str__(self) -> str:
        return f"{named(self, 'role', self.role_id)} ({named(self, 'guild', self.guild_id)})"


class TimerState(models.TextChoices):
    ACTIVE = "active", "active"
    PAUSED = "paused", "paused"
    EXPIRED = "expired", "expired"
    CLEARED = "cleared", "cleared"


LIVE_STATES = (TimerState.ACTIVE, TimerState.PAUSED)


class PauseKind(models.TextChoices):
    MEMBER = "member", "this member"
    GLOBAL = "global", "the whole role (pause-all)"
    AWAY = "away", "the member is away from the guild"
    ROLE_MISSING = "role_missing", "the role was taken away by hand"


class ExpiryOutcome(models.TextChoices):
    REMOVED = "removed", "role removed"
    MEMBER_GONE = "member_gone", "member has left"
    ROLE_GONE = "role_gone", "role was deleted"
    FORBIDDEN = "forbidden", "bot may not remove the role"
    FAILED_RETRY = "failed_retry", "failed, will retry"
    FAILED = "failed", "failed after retries"


class TimedRole(models.Model):
    """A member's hold on a role until ``expires_at`` (or, paused, for ``paused_remaining``).

    ``warnings_sent`` lists the thresholds (minutes) already dealt with in the current
    run; ``next_warn_at`` is the time the next unsent one falls due, kept in step by the
    services so that finding due warnings is an index probe, not a table scan.
    """

    guild_id = models.BigIntegerField()
    member_id = models.BigIntegerField()
    role_id = models.BigIntegerField()
    state = models.CharField(max_length=8, choices=TimerState.choices, default=TimerState.ACTIVE)
    expires_at = models.DateTimeField(null=True, blank=True)
    paused_remaining = models.DurationField(null=True, blank=True)
    pause_until = models.DateTimeField(null=True, blank=True, help_text="A paused timer resumes by itself then.")
    pause_kind = models.CharField(max_length=16, choices=PauseKind.choices, blank=True)
    warn_channel_id = models.BigIntegerField(null=True, blank=True)
    warnings_sent = models.JSONField(default=list, blank=True)
    next_warn_at = models.DateTimeField(null=True, blank=True)
    issued_by_id = models.BigIntegerField(null=True, blank=True)
    created_at = models.DateTimeField(auto_now_add=True)
    updated_at = models.DateTimeField(auto_now=True)
    ended_at = models.DateTimeField(null=True, blank=True)
    outcome = models.CharField(max_length=16, choices=ExpiryOutcome.choices, blank=True)
    outcome_detail = models.CharField(max_length=300, blank=True)
    # A sweep worker's claim: others skip the row until the lease ends (or its worker dies).
    lease_until = models.DateTimeField(null=True, blank=True)
    lease_owner = models.CharField(max_length=32, blank=True)
    attempts = models.PositiveSmallIntegerField(default=0, help_text="Failed attempts to remove the role at expiry.")
    # Warnings have a claim of their own, so that a warning being posted (or backing off
    # after a failure) never keeps the same row's expiry from being claimed.
    warn_lease_until = models.DateTimeField(null=True, blank=True)
    warn_lease_owner = models.CharField(max_length=32, blank=True)
    # The member left the guild while the timer was live; cleared when they rejoin.
    away_since = models.DateTimeField(null=True, blank=True)

    class Meta:
        constraints = [
            models.UniqueConstraint(
                fields=["guild_id", "member_id", "role_id"],
                condition=Q(state__in=["active", "paused"]),
                name="timer_one_live_per_member_role",
            ),
        ]
        indexes = [
            models.Index(fields=["expires_at"], condition=Q(state="active"), name="timer_due_expiry"),
            models.Index(
                fields=["next_warn_at"], condition=Q(state="active", next_warn_at__isnull=False), name="timer_due_warning"
            ),
            models.Index(fields=["pause_until"], condition=Q(state="paused", pause_until__isnull=False), name="timer_due_resume"),
            # The guild's timers, newest first (API pages).
            models.Index(fields=["guild_id", "-id"], name="timer_guild_recent"),
            # "Show my timers", role reports and pause-all by role.
            models.Index(fields=["guild_id", "role_id", "state"], name="timer_guild_role_state"),
            models.Index(fields=["guild_id", "member_id", "state"], name="timer_guild_member_state"),
        ]

    def __str__(self) -> str:
        member = named(self, "member", self.member_id, guild_id=self.guild_id)
        guild = named(self, "guild", self.guild_id)
        return f"{named(self, 'role', self.role_id)} for {member} in {guild} ({self.get_state_display()})"

    @property
    def ends_at(self) -> datetime:
        """When a running timer ends: ``expires_at``, which every active timer has."""
        if self.expires_at is None:
            raise ValueError(f"timer {self.pk} ({self.state}) has no expiry")
        return self.expires_at

    @property
    def frozen_remaining(self) -> timedelta:
        """A paused timer's remainder: ``paused_remaining``, which every paused timer has."""
        if self.paused_remaining is None:
            raise ValueError(f"timer {self.pk} ({self.state}) has no frozen remainder")
        return self.paused_remaining


class TimerEventKind(models.TextChoices):
    SET = "set", "set"
    ADD = "add", "time added"
    REMOVE = "remove", "time removed"
    PAUSE = "pause", "paused"
    RESUME = "resume", "resumed"
    AUTO_RESUME = "auto_resume", "resumed at its deadline"
    CLEAR = "clear", "cleared"
    WARN = "warn", "warning sent"
    EXPIRE = "expire", "expired"
    IMPORT = "import", "imported from another bot"
    LEAVE = "leave", "member left"
    REJOIN = "rejoin", "role given back on rejoin"
    ROLE_MISSING = "role_missing", "role found taken away"
    RESTORE = "restore", "role given back"
    BULK = "bulk", "changed by a bulk action"


class TimerEvent(models.Model):
    """The history of a timer: who did what, and when."""

    # timer_event_recent (timer, -created_at) serves lookups by timer: no separate FK index.
    timer = models.ForeignKey(TimedRole, on_delete=models.CASCADE, related_name="events", db_index=False)
    kind = models.CharField(max_length=16, choices=TimerEventKind.choices)
    actor_id = models.BigIntegerField(null=True, blank=True)
    seconds = models.BigIntegerField(null=True, blank=True, help_text="Time added or removed, where it applies.")
    detail = models.CharField(max_length=300, blank=True)
    created_at = models.DateTimeField(auto_now_add=True)

    class Meta:
        indexes = [models.Index(fields=["timer", "-created_at"], name="timer_event_recent")]

    def __str__(self) -> str:
        # Named after its timer on a page that attached names to both; in the timer's own inline, by number.
        timer = TimerEvent.timer.field.get_cached_value(self, None)
        if timer is not None and names_attached(self):
            return f"{self.get_kind_display()}: {timer}"
        return f"{self.get_kind_display()} on timer #{self.timer_id}"


class RoleReport(models.Model):
    """A scheduled post listing who holds a role and for how long."""

    guild_id = models.BigIntegerField()
    role_id = models.BigIntegerField()
    channel_id = models.BigIntegerField()
    interval_minutes = models.PositiveIntegerField(default=1440)
    next_run_at = models.DateTimeField()
    last_run_at = models.DateTimeField(null=True, blank=True)
    created_by_id = models.BigIntegerField(null=True, blank=True)
    created_at = models.DateTimeField(auto_now_add=True)

    class Meta:
        constraints = [
            models.UniqueConstraint(fields=["guild_id", "role_id", "channel_id"], name="report_unique_per_channel"),
        ]
        indexes = [models.Index(fields=["next_run_at"], name="report_due")]

    def __str__(self) -> str:
        return f"report of {named(self, 'role', self.role_id)} to {named(self, 'channel', self.channel_id)}"


class SweepBaton(models.Model):
    """The right to run the timer engine: one sweep run holds it at a time and hands it on.

    A run renews ``held_until`` while it sweeps; before it ends it writes its successor's
    token as ``holder`` and queues that successor, so the engine never stops between runs.
    A run that finds the baton held ends at once, which keeps the relay to one runner
    however often the one-minute watchdog schedule starts one.
    """

    name = models.CharField(max_length=32, unique=True)
    holder = models.CharField(max_length=64, blank=True)
    held_until = models.DateTimeField(null=True, blank=True)
    updated_at = models.DateTimeField(auto_now=True)

    def __str__(self) -> str:
        return f"{self.name} ({self.holder or 'free'})"


class BulkKind(models.TextChoices):
    ADD = "add", "bulk add"
    CLEAR = "clear", "bulk clear"


class BulkState(models.TextChoices):
    PENDING = "pending", "waiting"
    RUNNING = "running", "running"
    CANCELLED = "cancelled", "cancelled"
    DONE = "done", "done"
    FAILED = "failed", "failed"


class BulkJob(models.Model):
    """A bulk timer change (``/timer bulk-add`` / ``bulk-clear``) worked through in member-id order.

    ``cursor`` is the last member id finished, saved with each step's changes, so that a
    restart goes on after it: nothing is lost and nothing is done twice.
    """

    guild_id = models.BigIntegerField()
    kind = models.CharField(max_length=8, choices=BulkKind.choices)
    role_id = models.BigIntegerField()
    seconds = models.BigIntegerField(null=True, blank=True, help_text="The duration a bulk add gives.")
    holders_of_role_id = models.BigIntegerField(null=True, blank=True, help_text="Members holding this role get the timer.")
    requested_by_id = models.BigIntegerField(null=True, blank=True)
    channel_id = models.BigIntegerField(null=True, blank=True, help_text="Where the progress message is.")
    message_id = models.BigIntegerField(null=True, blank=True, help_text="The progress message edited as it goes.")
    state = models.CharField(max_length=10, choices=BulkState.choices, default=BulkState.PENDING)
    total = models.PositiveIntegerField(null=True, blank=True)
    done_count = models.PositiveIntegerField(default=0)
    skipped_count = models.PositiveIntegerField(default=0)
    failed_count = models.PositiveIntegerField(default=0)
    cursor = models.BigIntegerField(default=0)
    detail = models.CharField(max_length=300, blank=True)
    cancel_requested = models.BooleanField(default=False)
    created_at = models.DateTimeField(auto_now_add=True)
    updated_at = models.DateTimeField(auto_now=True)
    finished_at = models.DateTimeField(null=True, blank=True)
    lease_until = models.DateTimeField(null=True, blank=True)
    lease_owner = models.CharField(max_length=32, blank=True)

    class Meta:
        indexes = [
            models.Index(fields=["created_at"], condition=Q(state__in=["pending", "running"]), name="bulk_job_open"),
            models.Index(fields=["guild_id", "-id"], name="bulk_job_guild_recent"),
        ]

    def __str__(self) -> str:
        role = named(self, "role", self.role_id)
        return f"{self.get_kind_display()} of {role} in {named(self, 'guild', self.guild_id)} ({self.get_state_display()})"


class TimerReconcile(models.Model):
    """When a guild's live timers were last checked against its members' real roles.

    Kept so that a restart reconciles only the guilds that are due, not every guild at
    once; ``lease_until`` lets one process at a time work on a guild.
    """

    guild_id = models.BigIntegerField(unique=True)
    started_at = models.DateTimeField(null=True, blank=True)
    finished_at = models.DateTimeField(null=True, blank=True)
    lease_until = models.DateTimeField(null=True, blank=True)
    lease_owner = models.CharField(max_length=32, blank=True)
    checked = models.PositiveIntegerField(default=0, help_text="Live timers checked in the last run.")
    restored = models.PositiveIntegerField(default=0, help_text="Roles given back in the last run.")
    paused = models.PositiveIntegerField(default=0, help_text="Timers paused for a missing role in the last run.")
    away = models.PositiveIntegerField(default=0, help_text="Timers whose member was found gone in the last run.")
    untracked = models.PositiveIntegerField(default=0, help_text="Timed roles held with no live timer (reported only).")
    detail = models.CharField(max_length=300, blank=True)

    class Meta:
        verbose_name = "timer reconciliation"

    def __str__(self) -> str:
        return named(self, "guild", self.guild_id)
