"""Operational records: what the long-running processes report about themselves, API tokens, and
the permissions of operations that have no model of their own (backups)."""

from datetime import timedelta

from django.db import models
from django.utils import timezone

API_TOKEN_LIFETIME = timedelta(days=90)


def api_token_default_expiry():
    """A new token works for 90 days unless its creator picks another lifetime."""
    return timezone.now() + API_TOKEN_LIFETIME


class ShardHeartbeat(models.Model):
    """The last sign of life of one bot shard (written every ~15 s by ``runbot``)."""

    shard_id = models.PositiveIntegerField(unique=True)
    shard_count = models.PositiveIntegerField(default=1)
    latency_ms = models.FloatField(null=True, blank=True)
    guild_count = models.PositiveIntegerField(default=0)
    hostname = models.CharField(max_length=255, blank=True)
    pid = models.PositiveIntegerField(null=True, blank=True)
    started_at = models.DateTimeField(null=True, blank=True)
    last_seen = models.DateTimeField()

    class Meta:
        ordering = ["shard_id"]

    def __str__(self) -> str:
        return f"shard {self.shard_id}/{self.shard_count}"


class SweepRun(models.Model):
    """One run of the timer sweep (about a minute of work by one worker): what it did, how late."""

    worker = models.CharField(max_length=64)
    started_at = models.DateTimeField()
    finished_at = models.DateTimeField()
    resumed = models.PositiveIntegerField(default=0)
    warned = models.PositiveIntegerField(default=0)
    expired = models.PositiveIntegerField(default=0)
    reported = models.PositiveIntegerField(default=0)
    failures = models.PositiveIntegerField(default=0)
    latency_p50_ms = models.FloatField(null=True, blank=True, help_text="Expiry: role removed this long after due.")
    latency_max_ms = models.FloatField(null=True, blank=True)

    class Meta:
        indexes = [models.Index(fields=["-started_at"], name="sweep_run_recent")]

    def __str__(self) -> str:
        return f"sweep by {self.worker} at {self.started_at:%Y-%m-%d %H:%M:%S}"


class ApiToken(models.Model):
    """A per-user key for /api/v1. Only a SHA-256 of the key is kept; the key is shown once."""

    user = models.ForeignKey("auth.User", on_delete=models.CASCADE, related_name="api_tokens")
    name = models.CharField(max_length=100)
    prefix = models.CharField(max_length=12, help_text="The key's first characters, to tell keys apart.")
    key_hash = models.CharField(max_length=64, unique=True)
    created_at = models.DateTimeField(auto_now_add=True)
    created_by = models.ForeignKey(
        "auth.User", on_delete=models.SET_NULL, null=True, blank=True, related_name="api_tokens_created"
    )
    last_used_at = models.DateTimeField(null=True, blank=True)
    revoked_at = models.DateTimeField(null=True, blank=True)
    expires_at = models.DateTimeField(default=api_token_default_expiry, help_text="The token stops working then.")
    read_only = models.BooleanField(
        default=False, help_text="Only reads (GET): the token cannot create, change or delete anything."
    )

    class Meta:
        verbose_name = "API token"

    def __str__(self) -> str:
        return f"{self.name} ({self.prefix}…)"


class HealthSnapshot(models.Model):
    """A daily reading of the database's size and checks, for the growth plots."""

    taken_at = models.DateTimeField()
    vendor = models.CharField(max_length=20)
    database_bytes = models.BigIntegerField()
    tables = models.JSONField(default=dict, help_text="Per table: rows (estimated on PostgreSQL) and bytes.")
    checks = models.JSONField(default=dict, help_text="Each check's status and value at the time.")

    class Meta:
        indexes = [models.Index(fields=["-taken_at"], name="health_snapshot_recent")]

    def __str__(self) -> str:
        return f"{self.vendor} snapshot at {self.taken_at:%Y-%m-%d}"


class BackupAccess(models.Model):
    """No table: the permissions of the backup pages, which have no model (backups are files)."""

    class Meta:
        managed = False
        default_permissions = ()
        permissions = [("create_backup", "Can create a backup now (from the Backups page)")]

    def __str__(self) -> str:
        return "backups"


class RetentionRun(models.Model):
    """One run of retention: what it archived (and then deleted), where the archive is, or why it failed."""

    started_at = models.DateTimeField()
    finished_at = models.DateTimeField(null=True, blank=True)
    dry_run = models.BooleanField(default=False)
    timers_archived = models.PositiveIntegerField(default=0)
    events_archived = models.PositiveIntegerField(default=0)
    ledger_rows_folded = models.PositiveIntegerField(default=0)
    carried_rows = models.PositiveIntegerField(default=0, help_text="Members whose folded rows became one carried-forward row.")
    longest_batch_ms = models.FloatField(null=True, blank=True, help_text="The longest delete transaction, in ms.")
    archive_path = models.CharField(max_length=500, blank=True)
    error = models.TextField(blank=True)

    class Meta:
        indexes = [models.Index(fields=["-started_at"], name="retention_run_recent")]

    def __str__(self) -> str:
        return f"retention at {self.started_at:%Y-%m-%d %H:%M:%S}"


class DrillResult(models.Model):
    """One restore drill: which backup came back into a scratch database, how long it took, and whether it matched."""

    class Source(models.TextChoices):
        LOCAL = "local", "local backup"
        OFFSITE = "offsite", "off-site copy"
        PITR = "pitr", "point-in-time recovery"

    started_at = models.DateTimeField()
    duration_seconds = models.FloatField(null=True, blank=True)
    source = models.CharField(max_length=10, choices=Source.choices, default=Source.LOCAL)
    backup = models.CharField(max_length=255, blank=True, help_text="The backup file, or the PITR engine and moment.")
    vendor = models.CharField(max_length=20, blank=True)
    tables_compared = models.PositiveIntegerField(default=0)
    rows_compared = models.BigIntegerField(default=0)
    mismatches = models.JSONField(default=list, blank=True, help_text="Tables whose counts differ: [table, backup, restored].")
    passed = models.BooleanField(default=False)
    error = models.TextField(blank=True)

    class Meta:
        indexes = [models.Index(fields=["-started_at"], name="drill_result_recent")]

    def __str__(self) -> str:
        return f"drill of {self.backup or self.source} at {self.started_at:%Y-%m-%d %H:%M:%S}"


class AlertState(models.Model):
    """One alert's state: pending while its condition holds for less than the hold time, then firing until it
    has been absent for the clear hold time. Transitions are claimed with conditional UPDATEs, so two
    evaluators never post the same start or clear twice."""

    name = models.CharField(max_length=64, unique=True)
    detail = models.TextField(blank=True, help_text="What the last evaluation saw.")
    pending_since = models.DateTimeField(null=True, blank=True, help_text="The condition has held since then.")
    firing_since = models.DateTimeField(null=True, blank=True, help_text="Firing since then (empty: not firing).")
    absent_since = models.DateTimeField(null=True, blank=True, help_text="Firing, but the condition is gone since then.")
    last_seen = models.DateTimeField(null=True, blank=True, help_text="The last evaluation that found the condition.")
    cleared_at = models.DateTimeField(null=True, blank=True)
    notice = models.CharField(max_length=10, blank=True, help_text="A start or clear notice still to be delivered.")
    notice_channels = models.CharField(max_length=100, blank=True)

    class Meta:
        indexes = [models.Index(fields=["name"], name="alert_state_firing", condition=models.Q(firing_since__isnull=False))]

    def __str__(self) -> str:
        return f"alert {self.name} ({'firing' if self.firing_since else 'quiet'})"
