"""Backups: create, delete, restore and retention (django-dbbackup's connectors underneath).

A restore verifies the file first (see ``verify.py``), takes a pre-restore snapshot, then
replaces the database in one transaction; if that fails anyway, the snapshot is put back
before the error is raised, so a failed restore loses nothing.
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
    backup_get,
    backups_list,
    file_sha256,
    sidecar_path,
    sidecar_reserve,
)
from ops.backups.engines import engine_for
from ops.backups.engines.common import DumpUnreadable, ToolFailed, ToolMissing
from ops.backups.errors import BackupFailed, RestoreBusy, RestoreFailed
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
SNAPSHOT_GRACE = timedelta(days=1)  # pre-restore snapshots younger than this survive retention
_ORIGINS = {"scheduled": "scheduler", "pre-migrate": "manage.py backup_before_migrate"}


def _actor(user, origin: str, kind: str) -> str:
    if user is not None and user.is_authenticated:
        return user.get_username()
    return origin or _ORIGINS.get(kind, "system")


def backup_create(*, kind: str, user=None, origin: str = "", alias: str = DEFAULT_DB_ALIAS) -> BackupInfo:
    """Dump the database, gzip it into BACKUP_DIR and write its sidecar; return the new backup."""
    if kind not in KINDS:
        raise ValueError(f"kind must be one of {KINDS}, not {kind!r}")
    connection = connections[alias]
    if connection.in_atomic_block:
        raise RuntimeError("backup_create must run outside a transaction (it takes its own snapshot)")
    engine = engine_for(connection.vendor)
    folder = backup_dir()
    now = timezone.now()
    stem = f"{PREFIX}{now:%Y-%m-%d-%H%M%S}-{kind}"  # django-dbbackup's date format: dbrestore sorts ours too
    suffix = f".{engine.EXTENSION}.gz"
    partial = folder / f".partial-{secrets.token_hex(6)}{suffix}"
    path = None
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
        path = sidecar_reserve(folder, stem, suffix, facts)
        os.replace(partial, path)
    except (ToolMissing, ToolFailed, DumpUnreadable, OSError, sqlite3.Error, DatabaseError) as exc:
        if path is not None and not path.exists():
            sidecar_path(path).unlink(missing_ok=True)
        if isinstance(exc, ToolMissing):
            raise BackupFailed(f"The backup could not be made: {exc}.") from exc
        logger.exception("backup (%s) failed", kind)
        raise BackupFailed(f"The backup could not be made ({type(exc).__name__}); the server log has the details.") from exc
    finally:
        partial.unlink(missing_ok=True)
    logger.info("backup %s made (%s, %s bytes) by %s", path.name, kind, facts["size"], facts["created_by"])
    return backup_get(path.name)


def _compress(raw: Path, dest: Path, *, inner_name: str, mtime: datetime, level: int) -> None:
    # Private from the first byte: a backup holds every row, password and token hashes included.
    with os.fdopen(os.open(dest, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600), "wb") as out:
        gz_args = {"filename": inner_name, "mode": "wb", "fileobj": out, "compresslevel": level, "mtime": int(mtime.timestamp())}
        with gzip.GzipFile(**gz_args) as gz, open(raw, "rb") as source:
            shutil.copyfileobj(source, gz, 1 << 20)
        out.flush()
        os.fsync(out.fileno())


def backup_delete(*, name: str, user=None) -> None:
    """Remove a backup file and its sidecar."""
    info = backup_get(name)
    info.path.unlink(missing_ok=True)
    sidecar_path(info.path).unlink(missing_ok=True)
    logger.info("backup %s deleted by %s", name, _actor(user, "", ""))


def backups_apply_retention(*, keep_count: int, keep_days: int, now: datetime | None = None) -> list[str]:
    """Delete Guildhall's backups beyond the newest ``keep_count`` or older than ``keep_days``.

    The newest backup always stays, and so do pre-restore snapshots younger than a day (the
    way back from a restore that turned out wrong). Files this app did not make are left alone.
    """
    now = now or timezone.now()
    ours = [b for b in backups_list() if b.name.startswith(PREFIX)]
    deleted = []
    for index, backup in enumerate(ours):
        age = now - backup.created_at
        if index == 0 or (backup.kind == "pre-restore" and age < SNAPSHOT_GRACE):
            continue
        if index >= keep_count or age > timedelta(days=keep_days):
            backup_delete(name=backup.name)
            deleted.append(backup.name)
    for partial in backup_dir().glob(".partial-*"):  # left by a backup that was killed half way
        with contextlib.suppress(FileNotFoundError):
            if now.timestamp() - partial.stat().st_mtime > SNAPSHOT_GRACE.total_seconds():
                partial.unlink()
    return deleted


@dataclass(frozen=True)
class RestoreOutcome:
    name: str
    snapshot: str
    pending_migrations: int


@contextlib.contextmanager
def _restore_lock() -> Iterator[None]:
    with open(backup_dir() / ".restore.lock", "w") as lock:
        try:
            fcntl.flock(lock, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError:
            raise RestoreBusy("Another restore is running; wait for it to finish.") from None
        yield


def backup_restore(*, name: str, user=None, alias: str = DEFAULT_DB_ALIAS) -> RestoreOutcome:
    """Verify a backup, snapshot the database, then replace the database with the backup."""
    actor = _actor(user, "", "")
    with _restore_lock(), backup_unpacked(name=name, alias=alias) as verified:
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
