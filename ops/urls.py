"""Every URL of the ops app: the health endpoints at the site root, and the operations pages
in the admin's look under /admin/ops/ (staff only). Each page group keeps its namespace."""

from django.urls import include, path, re_path
from django_prometheus.exports import ExportToDjangoView

from ops import views
from ops.backups import views as backups
from ops.dbhealth import views as dbhealth
from ops.exports import export_download
from ops.status import ready
from ops.status import views as status
from ops.status.metrics import metrics_collector_register

# Guildhall's gauges join django-prometheus's in the default registry (once per process).
metrics_collector_register()

backup_pages = [
    path("", backups.backup_list, name="index"),
    path("create/", backups.backup_create_now, name="create"),
    path("<str:name>/download/", backups.backup_download, name="download"),
    path("<str:name>/delete/", backups.backup_delete_confirm, name="delete"),
    path("<str:name>/restore/", backups.backup_restore_confirm, name="restore"),
]
database_pages = [
    path("", dbhealth.database_health, name="index"),
    path("snapshot/", dbhealth.snapshot_take, name="snapshot"),
]
status_pages = [path("", status.status, name="index")]
# ``<dataset>.csv`` or ``<dataset>.jsonl``, for one guild with ``?guild=<id>``.
export_files = [re_path(r"^(?P<dataset>[a-z-]+)\.(?P<fmt>csv|jsonl)$", export_download, name="download")]

urlpatterns = [
    # Liveness (no dependencies), readiness (application/health+json) and Prometheus.
    path("health", views.health, name="health"),
    path("health/ready", ready.ready, name="health-ready"),
    path("metrics", ready.metrics_access(ExportToDjangoView), name="metrics"),
    path("admin/ops/backups/", include((backup_pages, "backups"))),
    path("admin/ops/database/", include((database_pages, "dbhealth"))),
    path("admin/ops/status/", include((status_pages, "status"))),
    path("admin/ops/exports/", include((export_files, "exports"))),
]
