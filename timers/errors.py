"""Errors of timed roles; every message is written for the member."""

from config.errors import ApplicationError


class TimerError(ApplicationError):
    """A timer request was refused."""


class InvalidDuration(TimerError):
    pass


class TimerNotFound(TimerError):
    http_status = 404


class RoleNotAllowed(TimerError):
    pass
