"""The JSON API (django-ninja), mounted at /api/: routes under /api/v1/, docs at /api/docs.

Who may call it: active staff users, with a per-user API token (``Authorization: Bearer
gh_…``) or with their admin session (the dashboard's own calls; unsafe methods need the
CSRF token), and only for the operations their Django model permissions allow (each
route declares one with ``config.api.requires``; superusers have them all). An expired
token is a 401 that says so; a read-only token is refused (403) on anything but a read.
This module sits above the apps: it mounts the commands, timers and guilds (activity log)
routers and authenticates with ops' API tokens.
"""

from __future__ import annotations

import functools
from typing import Any

from django.conf import settings
from django.contrib.admin.views.decorators import staff_member_required
from django.http import HttpRequest
from ninja.errors import AuthorizationError, HttpError
from ninja.security import APIKeyCookie, HttpBearer
from ninja.utils import check_csrf

from config.api import AuthenticationRefused, GuildhallAPI, permission_check
from ops.api_tokens import ApiTokenExpired, api_token_check

SAFE_METHODS = ("GET", "HEAD", "OPTIONS")


class ApiTokenAuth(HttpBearer):
    """``Authorization: Bearer gh_…``: a live token of an active staff user with the operation's permission."""

    def __call__(self, request: HttpRequest) -> Any:
        # Unlike HttpBearer's, never logs the header: it may hold a key.
        scheme, _, key = request.headers.get(self.header, "").partition(" ")
        if scheme.lower() != self.openapi_scheme or not key.strip():
            return None
        return self.authenticate(request, key.strip())

    def authenticate(self, request: HttpRequest, token: str) -> Any:
        try:
            found = api_token_check(token)
        except ApiTokenExpired as exc:
            raise AuthenticationRefused(str(exc)) from None
        if found is None:
            return None
        if found.read_only and request.method not in SAFE_METHODS:
            raise AuthorizationError(
                message=f"The API token {found.prefix}… is read-only: it may only read (GET), not {request.method}."
            )
        permission_check(request, found.user)
        return found.user


class StaffSessionAuth(APIKeyCookie):
    """The admin session of an active staff user with the operation's permission; unsafe methods carry the CSRF token."""

    param_name = settings.SESSION_COOKIE_NAME

    def __call__(self, request: HttpRequest) -> Any:
        user = getattr(request, "user", None)
        if user is None or not (user.is_authenticated and user.is_active and user.is_staff):
            return None
        if self.csrf and not getattr(request, "_ninja_csrf_exempt", False) and check_csrf(request):
            raise HttpError(403, "CSRF check failed: send the X-CSRFToken header with session requests.")
        permission_check(request, user)
        return user

    def authenticate(self, request: HttpRequest, key: str | None) -> Any:
        return self(request)


def _token_user(request: HttpRequest) -> Any:
    """The staff user of a live bearer token, or None (the docs need no model permission)."""
    scheme, _, key = request.headers.get("Authorization", "").partition(" ")
    if scheme.lower() != "bearer" or not key.strip():
        return None
    try:
        token = api_token_check(key.strip())
    except ApiTokenExpired:
        return None
    return token.user if token is not None else None


def docs_access(view):
    """The docs and schema are for staff: a staff session or an API token; others are sent to log in."""

    @functools.wraps(view)
    def guarded(request: HttpRequest, *args, **kwargs):
        if _token_user(request) is not None:
            return view(request, *args, **kwargs)
        return staff_member_required(view)(request, *args, **kwargs)

    return guarded


api = GuildhallAPI(
    title="Guildhall API",
    version="1",
    description=(
        "Custom commands, cookies, timed roles and their bulk jobs, server settings and the activity log. Discord ids are strings in responses. Each operation "
        "needs the Django model permission it names (view for reads; add, change or delete for writes)."
    ),
    urls_namespace="api",
    auth=[ApiTokenAuth(), StaffSessionAuth()],
    docs_decorator=docs_access,
)
api.add_router("/v1/", "commands.api.router")
api.add_router("/v1/", "timers.api.router")
api.add_router("/v1/", "timers.api_bulk.router")
api.add_router("/v1/", "timers.api_settings.router")
api.add_router("/v1/", "commands.api_settings.router")
api.add_router("/v1/", "guilds.api.router")  # the activity log
