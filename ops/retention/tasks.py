"""q2 task for retention (scheduled in ops/schedules.py)."""

from __future__ import annotations

from ops.retention.runs import retention_run


def retention_scheduled() -> str:
    """The daily retention run (RETENTION_TIMER_DAYS, RETENTION_LEDGER_DAYS); a failure is recorded on the run and raised."""
    run = retention_run()
    if run.error:
        raise RuntimeError(f"retention failed: {run.error}")
    return (
        f"archived {run.timers_archived} timers, {run.events_archived} events, "
        f"folded {run.ledger_rows_folded} ledger rows into {run.archive_path or 'no archive'}"
    )
