"""Status: migrations, q2 clusters and schedules, bot shards, sweep figures; /health/ready and /metrics."""
