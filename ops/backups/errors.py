"""Refusals of the backup services: each message is safe to show to the admin who asked."""

from config.errors import ApplicationError


class BackupError(ApplicationError):
    """Something about a backup the admin can read and act on."""


class BackupNotFound(BackupError):
    pass


class BackupSidecarMissing(BackupError):
    """The facts file next to the backup (checksum, engine, schema) is missing or unreadable."""


class BackupDamaged(BackupError):
    """The file is not whole: truncated, or its compressed stream or database is corrupt."""


class BackupChecksumMismatch(BackupError):
    pass


class BackupUnsigned(BackupError):
    """The sidecar has no signature, or not this installation's: the file may have been planted."""


class BackupTooSoon(BackupError):
    """Manual backups are rate-limited."""


class BackupForeignEngine(BackupError):
    pass


class BackupSchemaNewer(BackupError):
    pass


class BackupStorageUnreachable(BackupError):
    """The backup storage (S3, or BACKUP_DIR) could not be read; the message says where and why."""

    http_status = 503


class BackupFailed(BackupError):
    """A backup could not be made (the dump tool failed, the disk is full, …)."""


class RestoreBusy(BackupError):
    pass


class RestoreFailed(BackupError):
    pass
