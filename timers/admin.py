"""Django admin for timed roles.

Timers are read-only here: their changes must reach Discord, which goes through the
services and the timer engine rather than a bare row save.
"""
from django.contrib import admin

from timers.models import AllowedRole, RoleReport, TimedRole, TimerEvent, TimerSettings


@admin.register(TimerSettings)
class TimerSettingsAdmin(admin.ModelAdmin):
    list_display = ("guild_id", "admin_role_id", "warning_minutes", "updated_at")
    search_fields = ("=guild_id",)


@admin.register(AllowedRole)
class AllowedRoleAdmin(admin.ModelAdmin):
    list_display = ("guild_id", "role_id", "added_by_id", "created_at")
    search_fields = ("=guild_id", "=role_id")


class TimerEventInline(admin.TabularInline):
    model = TimerEvent
    extra = 0
    fields = ("created_at", "kind", "actor_id", "seconds", "detail")
    readonly_fields = fields
    ordering = ("-created_at",)
    can_delete = False

    def has_add_permission(self, request, obj=None):
        return False


@admin.register(TimedRole)
class TimedRoleAdmin(admin.ModelAdmin):
    show_full_result_count = False
    list_display = ("member_id", "role_id", "guild_id", "state", "expires_at", "paused_remaining", "outcome")
    list_filter = ("state", "outcome")
    search_fields = ("=guild_id", "=member_id", "=role_id")
    inlines = [TimerEventInline]

    def get_readonly_fields(self, request, obj=None):
        return [f.name for f in TimedRole._meta.fields]

    def has_add_permission(self, request):
        return False


@admin.register(TimerEvent)
class TimerEventAdmin(admin.ModelAdmin):
    show_full_result_count = False
    list_display = ("created_at", "timer", "kind", "actor_id", "seconds")
    list_filter = ("kind",)
    raw_id_fields = ("timer",)
    search_fields = ("=timer__id", "=actor_id")

    def get_readonly_fields(self, request, obj=None):
        return [f.name for f in TimerEvent._meta.fields]

    def has_add_permission(self, request):
        return False


@admin.register(RoleReport)
class RoleReportAdmin(admin.ModelAdmin):
    list_display = ("guild_id", "role_id", "channel_id", "interval_minutes", "next_run_at", "last_run_at")
    search_fields = ("=guild_id",)
