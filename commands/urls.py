"""Every URL of the commands app: the cookie leaderboards.

The public page is at /leaderboard/<guild id>/ (only for guilds that turn it on, 404
otherwise); the staff page is under /admin/ops/leaderboard/, beside the other operations pages.
"""

from django.urls import include, path

from commands import views

staff_pages = [
    path("", views.leaderboard_staff, name="staff-index"),
    path("<int:guild_id>/", views.leaderboard_staff, name="staff"),
]

urlpatterns = [
    path("leaderboard/<int:guild_id>/", views.leaderboard_public, name="leaderboard-public"),
    path("admin/ops/leaderboard/", include((staff_pages, "leaderboard"))),
]
