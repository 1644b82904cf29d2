"""Errors of timed roles; every message is written for the member."""

from config.errors import ApplicationError


class TimerError(ApplicationError):
    """A timer request was refused."""


class InvalidDuration(TimerError):
    pass


class TimerNotFound(TimerError):
    pass


class RoleNotAllowed(TimerError):
    pass
