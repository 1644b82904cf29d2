"""The Database health page (staff only): every check with its verdict, and the growth plots."""

from __future__ import annotations

from collections import Counter

from django.contrib import admin, messages
from django.contrib.admin.views.decorators import staff_member_required
from django.db import connection
from django.shortcuts import redirect, render
from django.views.decorators.http import require_GET, require_POST

from config.checks import FAIL, PASS, WARN, worst
from ops.dbhealth.checks import checks_for_vendor
from ops.dbhealth.snapshots import growth_charts, health_snapshot_take, health_snapshots_recent


@staff_member_required
@require_GET
def database_health(request):
    """Run the checks for this engine and show them with the plots of the daily snapshots."""
    checks = checks_for_vendor()
    snapshots = list(health_snapshots_recent())
    counts = Counter(check.status for check in checks)
    context = {
        **admin.site.each_context(request),
        "title": "Database health",
        "vendor": {"postgresql": "PostgreSQL", "sqlite": "SQLite"}.get(connection.vendor, connection.vendor),
        "checks": checks,
        "overall": worst(counts),
        "counts": [(status, counts.get(status, 0)) for status in (PASS, WARN, FAIL)],
        "charts": growth_charts(snapshots),
        "last_snapshot": snapshots[-1] if snapshots else None,
    }
    return render(request, "ops/dbhealth/index.html", context)


@staff_member_required
@require_POST
def snapshot_take(request):
    """Take a snapshot now (the worker takes one daily)."""
    snapshot = health_snapshot_take()
    messages.success(request, f"Snapshot taken at {snapshot.taken_at:%Y-%m-%d %H:%M} UTC.")
    return redirect("dbhealth:index")
