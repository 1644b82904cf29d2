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
