"""django-axes' failure limit for dashboard logins: per user and address, and per address alone.

Axes counts failures under each lockout parameter (here ``[username, ip_address]`` and
``ip_address``) and compares the largest count with one limit. The address's count is
always the largest (it includes every username tried from there), so this limit is the
per-address one until the pair alone has reached its own, lower limit: five bad
passwords for one account lock that account from that address only, and one address
cycling through many usernames is locked after LOGIN_FAILURE_LIMIT_PER_ADDRESS.
"""

from __future__ import annotations

from typing import Any

from axes.handlers.database import AxesDatabaseHandler
from django.conf import settings
from django.db.models import Sum
from django.http import HttpRequest


def login_failure_limit(request: HttpRequest, credentials: dict[str, Any] | None) -> int:
    """AXES_FAILURE_LIMIT: the pair's limit once the pair has reached it, else the address's."""
    pair_limit, address_limit = settings.LOGIN_FAILURE_LIMIT, settings.LOGIN_FAILURE_LIMIT_PER_ADDRESS
    attempts = AxesDatabaseHandler().get_user_attempts(request, credentials)
    # The first lockout parameter is the [username, ip_address] pair (see settings).
    pair_failures = attempts[0].aggregate(total=Sum("failures_since_start"))["total"] or 0 if attempts else 0
    return pair_limit if pair_failures >= pair_limit else address_limit
