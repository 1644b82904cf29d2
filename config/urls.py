"""Top-level URL map."""
from django.contrib import admin
from django.urls import path

from ops import views as ops_views

admin.site.site_header = "Guildhall"
admin.site.site_title = "Guildhall admin"
admin.site.index_title = "Communities"

urlpatterns = [
    path("health", ops_views.health, name="health"),
    path("admin/", admin.site.urls),
]
