"""Refusals of point-in-time recovery: each message is safe to show to the admin who asked."""

from config.errors import ApplicationError


class PitrError(ApplicationError):
    """Something about point-in-time recovery the admin can read and act on."""


class PitrNotConfigured(PitrError):
    pass


class PitrRefused(PitrError):
    """Bad input: a moment outside the window, a target that is the live database; nothing was changed."""


class PitrFailed(PitrError):
    """pgBackRest, Litestream or the scratch server failed; the message carries their last words."""


class RecoveryBeyondArchive(PitrFailed):
    """Recovery reached the end of the archived WAL without finding a commit after the moment."""
