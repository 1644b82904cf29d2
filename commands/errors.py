"""Errors of custom commands and cookies; every message is written for the member."""

from config.errors import ApplicationError


class CommandError(ApplicationError):
    """A custom-command request was refused."""


class CommandNameInvalid(CommandError):
    pass


class CommandExists(CommandError):
    http_status = 409


class CommandNotFound(CommandError):
    http_status = 404


class TemplateInvalid(CommandError):
    pass


class CommandOnCooldown(CommandError):
    def __init__(self, message: str, retry_after: float) -> None:
        super().__init__(message)
        self.retry_after = retry_after


class SettingsInvalid(ApplicationError):
    """A guild setting got a value it cannot take."""


class CookieError(ApplicationError):
    """A cookie change was refused."""


class CookieOnCooldown(CookieError):
    pass
