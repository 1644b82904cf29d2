"""Admin for the reconciliation records: when each guild's timers were last checked, and what was found."""

from __future__ import annotations

from django.contrib import admin

from timers.models import TimerReconcile


@admin.register(TimerReconcile)
class TimerReconcileAdmin(admin.ModelAdmin):
    list_display = ("guild_id", "finished_at", "checked", "restored", "paused", "away", "untracked", "detail")
    search_fields = ("=guild_id",)
    ordering = ("-finished_at",)
    readonly_fields = (
        "guild_id",
        "started_at",
        "finished_at",
        "lease_until",
        "lease_owner",
        "checked",
        "restored",
        "paused",
        "away",
        "untracked",
        "detail",
    )

    def has_add_permission(self, request, obj=None):
        return False  # written by the bot's reconciliation only

    def has_change_permission(self, request, obj=None):
        return False
