"""Admin for the reconciliation records: when each guild's timers were last checked, and what was found."""

from __future__ import annotations

from django.contrib import admin

from guilds.admin_titles import NamedObjects
from timers.models import TimerReconcile


@admin.register(TimerReconcile)
class TimerReconcileAdmin(NamedObjects, admin.ModelAdmin):
    list_display = (
        "guild_id",
        "finished_at",
        "timers_checked",
        "roles_given_back",
        "timers_paused",
        "members_gone",
        "held_untimed",
    )
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

    @admin.display(description="timers checked", ordering="checked")
    def timers_checked(self, obj: TimerReconcile) -> int:
        return obj.checked

    @admin.display(description="roles given back", ordering="restored")
    def roles_given_back(self, obj: TimerReconcile) -> int:
        return obj.restored

    @admin.display(description="paused", ordering="paused")
    def timers_paused(self, obj: TimerReconcile) -> int:
        return obj.paused

    @admin.display(description="members gone", ordering="away")
    def members_gone(self, obj: TimerReconcile) -> int:
        return obj.away

    @admin.display(description="held with no timer", ordering="untracked")
    def held_untimed(self, obj: TimerReconcile) -> int:
        return obj.untracked

    def has_add_permission(self, request, obj=None):
        return False  # written by the bot's reconciliation only

    def has_change_permission(self, request, obj=None):
        return False

    def has_delete_permission(self, request, obj=None):
        return False
