"""/health/ready (no login) and /metrics (a bearer token or a staff session), at the site root."""

from django.urls import path
from django_prometheus.exports import ExportToDjangoView

from ops.status import ready
from ops.status.metrics import metrics_collector_register

# Guildhall's gauges join django-prometheus's in the default registry (once per process).
metrics_collector_register()

urlpatterns = [
    path("health/ready", ready.ready, name="health-ready"),
    path("metrics", ready.metrics_access(ExportToDjangoView), name="metrics"),
]
