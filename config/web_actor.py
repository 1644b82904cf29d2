"""Who on the web asked for a change, for the activity log when no Discord member did.

A change made on the dashboard or through the API has no Discord actor, so the services'
log lines would say only what happened. The middleware keeps the request in a context
variable for its duration; ``web_actor`` names its user: the session's, or the one the
API's token authenticated (``permission_check`` marks it), with where the change came from.
"""

from __future__ import annotations

import contextvars
from collections.abc import Callable

from django.http import HttpRequest, HttpResponse

API_USER_ATTRIBUTE = "guildhall_api_user"

_request: contextvars.ContextVar[HttpRequest | None] = contextvars.ContextVar("web_actor_request", default=None)


class WebActorMiddleware:
    def __init__(self, get_response: Callable[[HttpRequest], HttpResponse]) -> None:
        self.get_response = get_response

    def __call__(self, request: HttpRequest) -> HttpResponse:
        token = _request.set(request)
        try:
            return self.get_response(request)
        finally:
            _request.reset(token)


def web_actor() -> str:
    """``alice on the dashboard`` / ``alice through the API`` for the request being served; empty outside one."""
    request = _request.get()
    if request is None:
        return ""
    api_user = getattr(request, API_USER_ATTRIBUTE, None)
    user = api_user or getattr(request, "user", None)
    if user is None or not getattr(user, "is_authenticated", False):
        return ""
    where = "through the API" if api_user is not None else "on the dashboard"
    return f"{user.get_username()} {where}"
