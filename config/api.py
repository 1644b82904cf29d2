"""The JSON API (django-ninja), mounted at /api/: routes under /api/v1/, docs at /api/docs.

Who may call it: staff users, with a per-user API token (``Authorization: Bearer gh_…``)
or with their admin session (the dashboard's own calls; unsafe methods need the CSRF
token). Refusals are ``{"detail": "<message>"}``: services' ApplicationError messages
become 400 (404 for things that don't exist, 409 for a name that is taken); ninja's
validation errors stay 422 with their list of problems.
"""

from __future__ import annotations

import functools
from typing import Any

from django.conf import settings
from django.contrib.admin.views.decorators import staff_member_required
from django.http import HttpRequest, HttpResponse
from ninja import NinjaAPI
from ninja.errors import AuthenticationError, HttpError
from ninja.operation import Operation
from ninja.security import APIKeyCookie, HttpBearer
from ninja.utils import check_csrf

from commands.errors import CommandExists, CommandNotFound
from config.errors import ApplicationError
from ops.api_tokens import api_token_authenticate
from timers.errors import TimerNotFound

# The most specific status for each kind of refusal; anything else an ApplicationError says is a 400.
ERROR_STATUS: tuple[tuple[type[ApplicationError], int], ...] = (
    (CommandNotFound, 404),
    (TimerNotFound, 404),
    (CommandExists, 409),
)


class ApiTokenAuth(HttpBearer):
    """``Authorization: Bearer gh_…``: a live token of an active staff user."""

    def __call__(self, request: HttpRequest) -> Any:
        # Unlike HttpBearer's, never logs the header: it may hold a key.
        scheme, _, key = request.headers.get(self.header, "").partition(" ")
        if scheme.lower() != self.openapi_scheme or not key.strip():
            return None
        return self.authenticate(request, key.strip())

    def authenticate(self, request: HttpRequest, token: str) -> Any:
        return api_token_authenticate(token)


class StaffSessionAuth(APIKeyCookie):
    """The admin session of an active staff user; unsafe methods must carry the CSRF token."""

    param_name = settings.SESSION_COOKIE_NAME

    def __call__(self, request: HttpRequest) -> Any:
        user = getattr(request, "user", None)
        if user is None or not (user.is_authenticated and user.is_active and user.is_staff):
            return None
        if self.csrf and not getattr(request, "_ninja_csrf_exempt", False) and check_csrf(request):
            raise HttpError(403, "CSRF check failed: send the X-CSRFToken header with session requests.")
        return user

    def authenticate(self, request: HttpRequest, key: str | None) -> Any:
        return self(request)


def docs_access(view):
    """The docs and schema are for staff: a staff session or an API token; others are sent to log in."""

    @functools.wraps(view)
    def guarded(request: HttpRequest, *args, **kwargs):
        if ApiTokenAuth()(request) is not None:
            return view(request, *args, **kwargs)
        return staff_member_required(view)(request, *args, **kwargs)

    return guarded


class GuildhallAPI(NinjaAPI):
    """NinjaAPI whose operation ids are the route functions' names (``timers_pause``)."""

    def get_openapi_operation_id(self, operation: Operation) -> str:
        return operation.view_func.__name__


api = GuildhallAPI(
    title="Guildhall API",
    version="1",
    description="Custom commands, cookies and timed roles. Discord ids are strings in responses.",
    urls_namespace="api",
    auth=[ApiTokenAuth(), StaffSessionAuth()],
    docs_decorator=docs_access,
)


@api.exception_handler(ApplicationError)
def application_error(request: HttpRequest, exc: ApplicationError) -> HttpResponse:
    """A service's refusal: its message, with the status that fits it."""
    status = next((code for kind, code in ERROR_STATUS if isinstance(exc, kind)), 400)
    return api.create_response(request, {"detail": str(exc)}, status=status)


@api.exception_handler(AuthenticationError)
def authentication_error(request: HttpRequest, exc: AuthenticationError) -> HttpResponse:
    """401 with the scheme to use."""
    response = api.create_response(
        request, {"detail": "Authentication required: send Authorization: Bearer <API token>."}, status=401
    )
    response["WWW-Authenticate"] = 'Bearer realm="api"'
    return response


api.add_router("/v1/", "commands.api.router")
api.add_router("/v1/", "timers.api.router")
