"""django-q2 tasks of the cookies app (plain functions referred to by dotted path)."""

from __future__ import annotations

from django.db import close_old_connections

from commands.services import cookie_windows_roll


def cookie_windows_roll_scheduled() -> dict[str, int]:
    """Hourly: take the days that fell out of the 7- and 30-day toplists off their totals (once per day each)."""
    close_old_connections()
    return cookie_windows_roll()
