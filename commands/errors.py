"""Errors of custom commands and cookies; every message is written for the member.

Named apart from discord.py's ``CommandError``/``CommandNotFound``/``CommandOnCooldown``,
which the bot's error handler reads side by side with these.
"""

from config.errors import ApplicationError


class CustomCommandError(ApplicationError):
    """A custom-command request was refused."""


class CommandNameInvalid(CustomCommandError):
    pass


class CommandExists(CustomCommandError):
    http_status = 409


class CustomCommandMissing(CustomCommandError):
    http_status = 404


class TemplateInvalid(CustomCommandError):
    pass


class CustomCommandCooling(CustomCommandError):
    def __init__(self, message: str, retry_after: float) -> None:
        super().__init__(message)
        self.retry_after = retry_after


class BuiltinInputInvalid(ApplicationError):
    """A built-in command (dice, roll, choose, countdown) got input it can't use."""


class SettingsInvalid(ApplicationError):
    """A guild setting got a value it cannot take."""


class CookieError(ApplicationError):
    """A cookie change was refused."""


class CookieOnCooldown(CookieError):
    pass


class CookieRoleInvalid(CookieError):
    """A cookie role (threshold and role) was refused."""


class CookieRoleMissing(CookieError):
    http_status = 404
