"""The staff cookie leaderboard, under /admin/ops/leaderboard/ (the public one is /leaderboard/<guild id>/)."""

from django.urls import path

from commands.views import leaderboard_staff

app_name = "leaderboard"
urlpatterns = [
    path("", leaderboard_staff, name="staff-index"),
    path("<int:guild_id>/", leaderboard_staff, name="staff"),
]
