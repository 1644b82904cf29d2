"""The operations pages, in the admin's look, under /admin/ops/ (staff only)."""

from django.urls import include, path

urlpatterns = [
    path("backups/", include("ops.backups.urls")),
    path("database/", include("ops.dbhealth.urls")),
    path("status/", include("ops.status.urls")),
    path("exports/", include("ops.export_urls")),
    path("leaderboard/", include("commands.leaderboard_urls")),
]
