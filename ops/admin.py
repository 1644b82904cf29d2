from django.contrib import admin

from ops.models import ShardHeartbeat


@admin.register(ShardHeartbeat)
class ShardHeartbeatAdmin(admin.ModelAdmin):
    list_display = ("shard_id", "shard_count", "latency_ms", "guild_count", "hostname", "pid", "last_seen")

    def has_add_permission(self, request):
        return False

    def has_change_permission(self, request, obj=None):
        return False
