"""Top-level URL map: the composition root, which may import every app."""

from django.contrib import admin
from django.urls import include, path
from django.views.generic import RedirectView

from commands import views as commands_views
from ops import views as ops_views
from ops.api import api

admin.site.site_header = "Guildhall"
admin.site.site_title = "Guildhall admin"
admin.site.index_title = "Communities"

urlpatterns = [
    path("", RedirectView.as_view(url="/admin/", permanent=False)),
    path("health", ops_views.health, name="health"),
    path("", include("ops.status.endpoint_urls")),
    path("api/", api.urls),
    # Public only for guilds that turn it on (404 otherwise); everything else needs a login.
    path("leaderboard/<int:guild_id>/", commands_views.leaderboard_public, name="leaderboard-public"),
    # Before admin/ so that these pages are not taken for admin model URLs.
    path("admin/ops/", include("ops.urls")),
    path("admin/", admin.site.urls),
]
