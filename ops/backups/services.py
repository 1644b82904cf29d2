"""Backups: create, delete and restore (django-dbbackup's connectors underneath); retention is in retention.py.

A restore verifies the file first (see ``verify.py``), takes a pre-restore snapshot, then
replaces the database in one transaction; if that fails anyway, the snapshot is put back
before the error is raised, so a failed restore loses nothing. Manual backups are one per
MANUAL_BACKUP_INTERVAL per installation, so that clicks can neither fill the disk nor
crowd the scheduled backups.
"""

from __future__ import annotations

import contextlib
import fcntl
import gzip
import logging
import os
import secrets
import shutil
import sqlite3
import tempfile
from collections.abc import Iterator
from dataclasses import dataclass
from datetime import datetime, timedelta
from pathlib import Path

from dbbackup import settings as dbbackup_settings
from django.db import DEFAULT_DB_ALIAS, DatabaseError, connections
from django.db.migrations.executor import MigrationExecutor
from django.utils import timezone

from ops.backups.catalog import (
    KINDS,
    PREFIX,
    BackupInfo,
    backup_dir,
    backup_files_remove,
    backup_get,
    backup_store,
    backups_list,
    file_sha256,
)
from ops.backups.engines import engine_for
from ops.backups.engines.common import DumpUnreadable, ToolFailed, ToolMissing
from ops.backups.errors import BackupError, BackupFailed, BackupTooSoon, BackupUnsigned, RestoreBusy, RestoreFailed
from ops.backups.retention import backups_apply_retention
from ops.backups.storage import STORAGE_ERRORS, StoredCopyMismatch, staging_dir, storage_location
from ops.backups.verify import VerifiedBackup, backup_unpacked, backup_verify

__all__ = [
    "RestoreOutcome",
    "backup_create",
    "backup_delete",
    "backup_restore",
    "backup_verify",
    "backups_apply_retention",
    "backups_list",
]

logger = logging.getLogger(__name__)
MANUAL_BACKUP_INTERVAL = timedelta(minutes=5)
_BACKUP_ERRORS: tuple[type[Exception], ...] = (
    ToolMissing,
    ToolFailed,
    DumpUnreadable,
    sqlite3.Error,
    DatabaseError,
    *STORAGE_ERRORS,
)
_ORIGINS = {"scheduled": "scheduler", "pre-migrate": "manage.py backup_before_migrate"}


def _actor(user, origin: str, kind: str) -> str:
    if user is not None and user.is_authenticated:
        return user.get_username()
    return origin or _ORIGINS.get(kind, "system")


def backup_create(*, kind: str, user=None, origin: str = "", alias: str = DEFAULT_DB_ALIAS) -> BackupInfo:
    """Dump the database, gzip it, store it (BACKUP_DIR or S3) and then its signed sidecar; return the new backup.

    A manual backup is refused (BackupTooSoon) within MANUAL_BACKUP_INTERVAL of the last one.
    """
    if kind not in KINDS:
        raise ValueError(f"kind must be one of {KINDS}, not {kind!r}")
    if kind == "manual":
        with _manual_slot():
            return _backup_make(kind=kind, user=user, origin=origin, alias=alias)
    return _backup_make(kind=kind, user=user, origin=origin, alias=alias)


@contextlib.contextmanager
def _folder_lock(name: str, busy: BackupError) -> Iterator[None]:
    """Hold an exclusive lock file in BACKUP_DIR (across processes), or raise ``busy`` at once."""
    with open(backup_dir() / name, "w") as lock:
        try:
            fcntl.flock(lock, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError:
            raise busy from None
        yield


@contextlib.contextmanager
def _manual_slot() -> Iterator[None]:
    # The lock makes check-then-make one step across processes: two clicks make one backup.
    with _folder_lock(".manual.lock", BackupTooSoon("A manual backup is being made right now; wait for it to finish.")):
        last = next((b for b in backups_list() if b.kind == "manual" and b.name.startswith(PREFIX)), None)
        wait = last.created_at + MANUAL_BACKUP_INTERVAL - timezone.now() if last is not None else timedelta(0)
        if last is not None and wait > timedelta(0):
            minutes = MANUAL_BACKUP_INTERVAL.total_seconds() / 60
            raise BackupTooSoon(
                f"A manual backup was made at {last.created_at:%H:%M:%S} UTC"
                f"{f' by {last.created_by}' if last.created_by else ''}; manual backups are one every "
                f"{minutes:g} minutes, so try again in {int(wait.total_seconds()) + 1} seconds."
            )
        yield


def _backup_make(*, kind: str, user, origin: str, alias: str) -> BackupInfo:
    connection = connections[alias]
    if connection.in_atomic_block:
        raise RuntimeError("backup_create must run outside a transaction (it takes its own snapshot)")
    engine = engine_for(connection.vendor)
    now = timezone.now()
    stem = f"{PREFIX}{now:%Y-%m-%d-%H%M%S}-{kind}"  # django-dbbackup's date format: dbrestore sorts ours too
    suffix = f".{engine.EXTENSION}.gz"
    # Built beside the backups when they are local (then linked in, not copied), in the temp folder otherwise.
    partial = staging_dir() / f".partial-{secrets.token_hex(6)}{suffix}"
    try:
        with tempfile.TemporaryDirectory(prefix="guildhall-backup-", dir=dbbackup_settings.TMP_DIR) as work:
            raw = Path(work) / f"dump.{engine.EXTENSION}"
            tables = engine.dump_create(alias, raw)
            migrations = dict(engine.dump_migrations(raw))  # the last one per app wins
            _compress(raw, partial, inner_name=f"{stem}.{engine.EXTENSION}", mtime=now, level=engine.GZIP_LEVEL)
        facts = {
            "engine": connection.settings_dict["ENGINE"],
            "connector": engine.CONNECTOR,
            "vendor": connection.vendor,
            "kind": kind,
            "created_at": now.isoformat(),
            "created_by": _actor(user, origin, kind),
            "sha256": file_sha256(partial),
            "size": partial.stat().st_size,
            "compression": "gzip",
            "migrations": migrations,
            "tables": tables,
        }
        name = backup_store(partial, stem=stem, suffix=suffix, facts=facts)
    except _BACKUP_ERRORS as exc:
        if isinstance(exc, ToolMissing):
            raise BackupFailed(f"The backup could not be made: {exc}.") from exc
        logger.exception("backup (%s) failed", kind)
        if isinstance(exc, OSError) and not isinstance(exc, StoredCopyMismatch):
            raise BackupFailed(f"The backup could not be made ({type(exc).__name__}); the server log has the details.") from exc
        raise BackupFailed(
            f"The backup could not be stored in {storage_location()} ({type(exc).__name__}); nothing of it was kept, "
            "and the server log has the details."
        ) from exc
    finally:
        partial.unlink(missing_ok=True)
    logger.info("backup %s made (%s, %s bytes) by %s", name, kind, facts["size"], facts["created_by"])
    return backup_get(name)


def _compress(raw: Path, dest: Path, *, inner_name: str, mtime: datetime, level: int) -> None:
    # Private from the first byte: a backup holds every row, password and token hashes included.
    with os.fdopen(os.open(dest, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600), "wb") as out:
        gz = gzip.GzipFile(filename=inner_name, mode="wb", fileobj=out, compresslevel=level, mtime=int(mtime.timestamp()))
        with gz, open(raw, "rb") as source:
            shutil.copyfileobj(source, gz, 1 << 20)
        out.flush()
        os.fsync(out.fileno())


def backup_delete(*, name: str, user=None) -> None:
    """Remove a backup file and its sidecar."""
    info = backup_get(name)
    backup_files_remove(info)
    logger.info("backup %s deleted by %s", name, _actor(user, "", ""))


@dataclass(frozen=True)
class RestoreOutcome:
    name: str
    snapshot: str
    pending_migrations: int


def _restore_lock() -> contextlib.AbstractContextManager[None]:
    return _folder_lock(".restore.lock", RestoreBusy("Another restore is running; wait for it to finish."))


def backup_restore(
    *, name: str, user=None, trust_unsigned: bool = False, origin: str = "", alias: str = DEFAULT_DB_ALIAS
) -> RestoreOutcome:
    """Verify a backup, snapshot the database, then replace the database with the backup.

    ``trust_unsigned`` restores a file whose sidecar this installation did not sign (brought
    from another installation); only a superuser (or a command run on the server) may say so.
    """
    actor = _actor(user, origin, "")
    if trust_unsigned and user is not None and not (user.is_active and user.is_superuser):
        raise BackupUnsigned("Only a superuser may restore a backup that this installation did not sign.")
    with _restore_lock(), backup_unpacked(name=name, alias=alias, trust_unsigned=trust_unsigned, actor=actor) as verified:
        try:
            snapshot = backup_create(kind="pre-restore", user=user, alias=alias)
        except BackupFailed as exc:
            raise RestoreFailed(f"Nothing was restored: the pre-restore snapshot could not be made. {exc}") from exc
        logger.warning("restore of %s started by %s (snapshot %s)", name, actor, snapshot.name)
        guilds = _guild_ids()
        try:
            _restore_into(verified, alias)
        except Exception:
            logger.exception("restore of %s failed; putting back the snapshot %s", name, snapshot.name)
            _put_back(snapshot.name, name, alias, guilds)
    _bot_caches_refresh(guilds | _guild_ids())
    pending = _pending_migrations(alias)
    logger.warning("restore of %s done by %s; %s migrations pending", name, actor, pending)
    return RestoreOutcome(name=name, snapshot=snapshot.name, pending_migrations=pending)


def _put_back(snapshot: str, name: str, alias: str, guilds: set[int]) -> None:
    try:
        with backup_unpacked(name=snapshot, alias=alias) as verified:
            _restore_into(verified, alias)
    except Exception:
        logger.critical("putting back the snapshot %s after the failed restore of %s failed", snapshot, name, exc_info=True)
        raise RestoreFailed(
            f"Restoring {name} failed, and so did putting back the pre-restore snapshot {snapshot}. Both run in "
            "one transaction, so the database is most likely as it was before; check it, and if it is not, "
            f"restore {snapshot} (it is in the list). The server log has the details."
        ) from None
    finally:
        _bot_caches_refresh(guilds | _guild_ids())
    raise RestoreFailed(
        f"Restoring {name} failed part way. The database was put back as it was, from the pre-restore "
        f"snapshot {snapshot}; the server log has the cause."
    )


def _restore_into(verified: VerifiedBackup, alias: str) -> None:
    connection = connections[alias]
    if connection.in_atomic_block:
        raise RuntimeError("a restore must run outside a transaction")
    target = connection.settings_dict["NAME"]
    # No handle of this process may hold the old database while it is replaced.
    connections.close_all()
    engine_for(connection.vendor).dump_restore(verified.dump, alias=alias, name=target)


def _guild_ids() -> set[int]:
    from commands.models import CustomCommand, GuildSettings

    try:
        return set(GuildSettings.objects.values_list("guild_id", flat=True)) | set(
            CustomCommand.objects.values_list("guild_id", flat=True).distinct()
        )
    except DatabaseError:  # a restored schema older than these tables
        return set()


def _bot_caches_refresh(guild_ids: set[int]) -> None:
    """Make every bot process drop what it cached from the database as it was."""
    from commands.services import commands_version_bump

    try:
        for guild_id in guild_ids:
            commands_version_bump(guild_id)
    except Exception:  # the restore stands; restarting the bots drops their caches too
        logger.exception("could not tell the bots about the restore: restart them")


def _pending_migrations(alias: str) -> int:
    try:
        executor = MigrationExecutor(connections[alias])
        return len(executor.migration_plan(executor.loader.graph.leaf_nodes()))
    except DatabaseError:
        logger.exception("could not count pending migrations after the restore")
        return 0
