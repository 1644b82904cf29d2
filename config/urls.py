"""Top-level URL map: the composition root, which may import every app."""

from django.contrib import admin
from django.urls import include, path
from django.views.generic import RedirectView

from ops.api import api

admin.site.site_header = "Guildhall"
admin.site.site_title = "Guildhall admin"
admin.site.index_title = "Communities"

urlpatterns = [
    path("", RedirectView.as_view(url="/admin/", permanent=False)),
    path("api/", api.urls),
    # One URL module per app. Before admin/, so that /admin/ops/… is not taken for admin model URLs.
    path("", include("ops.urls")),
    path("", include("commands.urls")),
    path("admin/", admin.site.urls),
]
