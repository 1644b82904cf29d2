"""The JSON API's shared parts (django-ninja): the API class, refusals and per-operation permissions.

The API itself (its instance, its authentication, the routers it mounts) lives in
``ops/api.py``, above the apps whose routers it mounts; this module imports no app.

Refusals are ``{"detail": "<message>"}``: an ApplicationError becomes its class's
``http_status`` (400 unless the class says 404, 409…); ninja's validation errors stay
422 with their list of problems. Every operation names the Django model permission it
needs with ``@requires("app.codename")``; the authenticators check it once they know the
user, so a missing permission is a 403 before the request body is even looked at.
"""

from __future__ import annotations

import functools
from collections.abc import Callable
from typing import Any

from django.http import HttpRequest, HttpResponse
from ninja import NinjaAPI, Schema
from ninja.decorators import decorate_view
from ninja.errors import AuthenticationError, AuthorizationError
from ninja.operation import Operation
from ninja.utils import contribute_operation_callback

from config.errors import ApplicationError
from config.web_actor import API_USER_ATTRIBUTE

AUTHENTICATION_REQUIRED = "Authentication required: send Authorization: Bearer <API token>."
_PERMISSION_ATTRIBUTE = "_guildhall_api_permission"


class ErrorOut(Schema):
    """A refusal: what was wrong, in words for the caller."""

    detail: str


class ValidationErrorOut(Schema):
    """A request that does not fit the schema: one entry per problem (``loc``, ``msg``, ``type``)."""

    detail: list[dict[str, Any]]


def refusals(*statuses: int) -> dict[int, type[Schema]]:
    """The error answers of an operation: 401, 403 and 422 always, plus ``statuses`` (400, 404, 409…)."""
    codes = sorted({401, 403, 422, *statuses})
    return {code: ValidationErrorOut if code == 422 else ErrorOut for code in codes}


class AuthenticationRefused(AuthenticationError):
    """A 401 whose message says why (an expired token, …) instead of the generic one."""

    def __init__(self, message: str) -> None:
        super().__init__(status_code=401, message=message)


def requires(*permissions: str) -> Callable[[Callable[..., Any]], Callable[..., Any]]:
    """Declare the model permissions (``"commands.add_customcommand"``) an operation needs, all of them.

    They are written into the operation's OpenAPI entry (``x-required-permissions``) and set
    on the request before authentication runs, where ``permission_check`` reads them.
    """
    if not permissions or not all(isinstance(p, str) and p.count(".") == 1 for p in permissions):
        raise ValueError("requires() takes one or more permissions written app_label.codename")

    def document(operation: Operation) -> None:
        operation.openapi_extra = {**(operation.openapi_extra or {}), "x-required-permissions": list(permissions)}
        needed = ", ".join(f"`{p}`" for p in permissions)
        operation.description = f"{operation.description or ''}\n\nNeeds the permission {needed}.".strip()

    def mark(run: Callable[..., Any]) -> Callable[..., Any]:
        @functools.wraps(run)
        def run_with_permission(request: HttpRequest, *args: Any, **kwargs: Any) -> Any:
            setattr(request, _PERMISSION_ATTRIBUTE, permissions)
            return run(request, *args, **kwargs)

        return run_with_permission

    def decorator(view: Callable[..., Any]) -> Callable[..., Any]:
        contribute_operation_callback(view, document)
        return decorate_view(mark)(view)

    return decorator


def permission_check(request: HttpRequest, user: Any) -> None:
    """Refuse (403) a user without the permissions the operation declared; an undeclared one is refused to all."""
    permissions = getattr(request, _PERMISSION_ATTRIBUTE, None)
    if not permissions:
        raise AuthorizationError(message="This operation declares no permission, so it is refused to everyone.")
    missing = [p for p in permissions if not user.has_perm(p)]
    if missing:
        raise AuthorizationError(
            message=f"Your account lacks the permission {' and '.join(missing)} that this operation needs; "
            "a superuser can grant it in the admin (Users or Groups)."
        )
    setattr(request, API_USER_ATTRIBUTE, user)  # named in the activity log as who asked


class GuildhallAPI(NinjaAPI):
    """NinjaAPI whose operation ids are the route functions' names (``timers_pause``), with our refusals."""

    def __init__(self, **kwargs: Any) -> None:
        super().__init__(**kwargs)
        self.add_exception_handler(ApplicationError, self._application_error)
        self.add_exception_handler(AuthenticationError, self._authentication_error)

    def get_openapi_operation_id(self, operation: Operation) -> str:
        return operation.view_func.__name__

    # ninja types a handler's exception as "the exception or its class"; ours are always instances.
    def _application_error(self, request: HttpRequest, exc: object) -> HttpResponse:
        """A service's refusal: its message, with the status its class declares."""
        status = exc.http_status if isinstance(exc, ApplicationError) else ApplicationError.http_status
        return self.create_response(request, {"detail": str(exc)}, status=status)

    def _authentication_error(self, request: HttpRequest, exc: object) -> HttpResponse:
        """401 with the scheme to use."""
        detail = exc.message if isinstance(exc, AuthenticationRefused) else AUTHENTICATION_REQUIRED
        response = self.create_response(request, {"detail": detail}, status=401)
        response["WWW-Authenticate"] = 'Bearer realm="api"'
        return response
