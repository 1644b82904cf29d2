"""Database health: PgHero-style checks on PostgreSQL, file checks on SQLite, daily snapshots."""

from django.urls import path

from ops.dbhealth import views

app_name = "dbhealth"
urlpatterns = [
    path("", views.database_health, name="index"),
    path("snapshot/", views.snapshot_take, name="snapshot"),
]
