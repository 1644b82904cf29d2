"""Backups: create, list, verify, restore, retention and drills (django-dbbackup underneath)."""

from django.urls import path

from ops.backups import views

app_name = "backups"
urlpatterns = [
    path("", views.backup_list, name="index"),
    path("create/", views.backup_create_now, name="create"),
    path("<str:name>/download/", views.backup_download, name="download"),
    path("<str:name>/delete/", views.backup_delete_confirm, name="delete"),
    path("<str:name>/restore/", views.backup_restore_confirm, name="restore"),
]
