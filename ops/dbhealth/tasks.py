"""q2 tasks of database health (scheduled by ``manage.py setup_schedules``)."""

from __future__ import annotations

from ops.dbhealth.snapshots import health_snapshot_take


def health_snapshot() -> str:
    """Take the daily health snapshot; the result line shows in q2's task list."""
    snapshot = health_snapshot_take()
    return f"snapshot {snapshot.pk}: {snapshot.vendor}, {snapshot.database_bytes} bytes"
