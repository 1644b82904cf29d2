"""Writes of the operational records."""

from __future__ import annotations

import os
import socket
from datetime import datetime

from django.utils import timezone

from config.database import retry_transient
from ops.models import ShardHeartbeat


@retry_transient()
def shard_heartbeat_record(
    *, shard_id: int, shard_count: int, latency_ms: float | None, guild_count: int, started_at: datetime | None
) -> None:
    """Upsert one shard's heartbeat row."""
    ShardHeartbeat.objects.update_or_create(
        shard_id=shard_id,
        defaults={
            "shard_count": shard_count,
            "latency_ms": latency_ms,
            "guild_count": guild_count,
            "hostname": socket.gethostname()[:255],
            "pid": os.getpid(),
            "started_at": started_at,
            "last_seen": timezone.now(),
        },
    )


@retry_transient()
def sweep_run_record(**figures) -> None:
    """Keep one sweep run's figures; runs older than a week are dropped."""
    from datetime import timedelta

    from ops.models import SweepRun

    SweepRun.objects.create(**figures)
    SweepRun.objects.filter(started_at__lt=timezone.now() - timedelta(days=7)).delete()
