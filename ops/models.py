"""Operational records: what the long-running processes report about themselves."""
from django.db import models


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
