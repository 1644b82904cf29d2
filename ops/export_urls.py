"""Exports under /admin/ops/exports/ (staff only): ``<dataset>.csv`` or ``<dataset>.jsonl``."""

from django.urls import re_path

from ops.exports import export_download

app_name = "exports"
urlpatterns = [
    re_path(r"^(?P<dataset>[a-z-]+)\.(?P<fmt>csv|jsonl)$", export_download, name="download"),
]
