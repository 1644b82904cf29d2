"""The Status page (staff only): migrations, q2 clusters and schedules, bot shards, sweep latencies."""

from __future__ import annotations

from django.conf import settings
from django.contrib import admin
from django.contrib.admin.views.decorators import staff_member_required
from django.shortcuts import render
from django.utils import timezone
from django.views.decorators.http import require_GET

from ops.alerts import selectors as alerts
from ops.alerts.conditions import TITLES as ALERT_TITLES
from ops.dbhealth.svg import Series, line_chart
from ops.status import selectors


def _latency_chart(sweeps):
    def points(field):
        return [(run.started_at, getattr(run, field)) for run in sweeps if getattr(run, field) is not None]

    return line_chart(
        [Series("p50", points("latency_p50_ms")), Series("max", points("latency_max_ms"))],
        title="Sweep latency (role removed after due)",
        value_format=lambda v: f"{v:,.0f} ms",
        empty_message="No sweep has recorded a latency yet.",
    )


@staff_member_required
@require_GET
def status(request):
    """Show what the worker and the bot are doing, and what the database still has to apply."""
    now = timezone.now()
    shards = selectors.shards_state()
    sweeps = selectors.sweeps_recent()
    last_sweep = sweeps[-1] if sweeps else None
    context = {
        **admin.site.each_context(request),
        "title": "Status",
        "migrations": selectors.migrations_state(),
        "clusters": selectors.q2_clusters(),
        "queue": selectors.q2_queue(),
        "schedules": selectors.schedules_state(),
        "shards": shards,
        "shards_missing": selectors.shards_missing(shards),
        "bot_configured": bool(settings.DISCORD_TOKEN),
        "bot_running": any(shard.running for shard in shards),
        "stale_after": selectors.HEARTBEAT_STALE_SECONDS,
        "sweeps": list(reversed(sweeps[-15:])),
        "last_sweep": last_sweep,
        "sweep_running": last_sweep is not None
        and (now - last_sweep.finished_at).total_seconds() <= selectors.SWEEP_STALE_SECONDS,
        "latency_chart": _latency_chart(sweeps),
        "retention": selectors.retention_last(),
        "retention_timer_days": settings.RETENTION_TIMER_DAYS,
        "retention_ledger_days": settings.RETENTION_LEDGER_DAYS,
        "alerts_firing": [(alert, ALERT_TITLES.get(alert.name, alert.name)) for alert in alerts.alerts_firing()],
        "alerts_cleared": [(alert, ALERT_TITLES.get(alert.name, alert.name)) for alert in alerts.alerts_cleared_recent()],
        "alert_channels": bool(settings.ALERT_DISCORD_WEBHOOK_URL or settings.ALERT_EMAIL_TO),
        "drills": list(alerts.drills_recent()),
        "drill_days": settings.BACKUP_DRILL_DAYS,
        "now": now,
    }
    return render(request, "ops/status/index.html", context)
