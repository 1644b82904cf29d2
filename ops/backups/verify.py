"""Checking a backup before anything is done with it.

The order matters for the message an admin reads: facts first (sidecar, size, checksum,
signature, engine), then the file itself (the whole gzip stream, the dump's own engine, the engine
tool's integrity check) and last the schema recorded inside the dump. The checked,
uncompressed copy is what a restore then uses, so the bytes verified are the bytes restored.
A backup kept remotely (S3) is first downloaded to a temporary file, streamed to disk, and
checked there; a local one is read in place.
A sidecar without this installation's signature is refused unless the caller (a superuser
bringing a file from another installation) says to trust it; that is logged with who.
"""

from __future__ import annotations

import contextlib
import gzip
import logging
import shutil
import tempfile
import zlib
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

from dbbackup import settings as dbbackup_settings
from django.db import DEFAULT_DB_ALIAS, connections
from django.db.migrations.loader import MigrationLoader

from ops.backups import storage
from ops.backups.catalog import BackupInfo, backup_get, file_sha256
from ops.backups.engines import LABELS, DumpUnreadable, engine_for, vendor_of_dump
from ops.backups.engines.common import ToolMissing
from ops.backups.errors import (
    BackupChecksumMismatch,
    BackupDamaged,
    BackupFailed,
    BackupForeignEngine,
    BackupSchemaNewer,
    BackupSidecarMissing,
    BackupUnsigned,
)

logger = logging.getLogger(__name__)


@dataclass(frozen=True)
class VerifiedBackup:
    """A backup that passed every check, and its uncompressed copy (gone when the context ends)."""

    info: BackupInfo
    dump: Path
    migrations: list[tuple[str, str]]


def backup_verify(*, name: str, alias: str = DEFAULT_DB_ALIAS, trust_unsigned: bool = False, actor: str = "") -> BackupInfo:
    """Check a backup without touching the database; raise a BackupError saying what is wrong."""
    with backup_unpacked(name=name, alias=alias, trust_unsigned=trust_unsigned, actor=actor) as verified:
        return verified.info


@contextlib.contextmanager
def backup_unpacked(
    *, name: str, alias: str = DEFAULT_DB_ALIAS, trust_unsigned: bool = False, actor: str = ""
) -> Iterator[VerifiedBackup]:
    """Verify a backup and yield its checked, uncompressed copy.

    ``trust_unsigned`` lets a sidecar without this installation's signature pass (a file
    from another installation); ``actor`` says who decided that, for the log.
    """
    info = backup_get(name)
    vendor = connections[alias].vendor
    _check_recorded(info)
    engine = engine_for(vendor)
    with tempfile.TemporaryDirectory(prefix="guildhall-verify-", dir=dbbackup_settings.TMP_DIR) as folder:
        try:
            stored = storage.fetch(info.name, Path(folder))
        except storage.STORAGE_ERRORS as exc:
            logger.exception("backup %s could not be read from %s", name, storage.storage_location())
            raise BackupFailed(
                f"Backup {name} could not be read from {storage.storage_location()} ({type(exc).__name__}); "
                "the server log has the details."
            ) from exc
        _check_checksum(info, stored, vendor)
        _check_signature(info, trust_unsigned=trust_unsigned, actor=actor)
        dump = Path(folder) / f"dump.{engine.EXTENSION}"
        _unpack(info, stored, dump)
        if stored.parent == Path(folder):
            stored.unlink()  # the downloaded copy: the dump is what is used from here on
        _check_content_engine(info, dump, vendor)
        try:
            engine.dump_check(dump)
            applied = engine.dump_migrations(dump)
        except DumpUnreadable as exc:
            raise BackupDamaged(f"Backup {name} is damaged: {exc}.") from exc
        except ToolMissing as exc:
            raise BackupFailed(f"Backup {name} cannot be checked: {exc}.") from exc
        _check_schema(info, applied)
        yield VerifiedBackup(info=info, dump=dump, migrations=applied)


def _check_recorded(info: BackupInfo) -> None:
    """What the listing alone tells: a sidecar with the facts, and a file of the recorded size."""
    if info.problem or info.facts is None:
        raise BackupSidecarMissing(f"Backup {info.name} cannot be verified: {info.problem}.")
    recorded = info.facts["size"]
    if info.size < recorded:
        raise BackupDamaged(
            f"Backup {info.name} is incomplete: the file has {info.size:,} bytes of the {recorded:,} it was "
            "written with (truncated)."
        )
    if info.size != recorded:
        raise BackupChecksumMismatch(
            f"Backup {info.name} does not match its checksum: the file changed after it was made (damaged or tampered with)."
        )


def _check_checksum(info: BackupInfo, stored: Path, vendor: str) -> None:
    if stored.stat().st_size != info.size or file_sha256(stored) != info.sha256:
        raise BackupChecksumMismatch(
            f"Backup {info.name} does not match its checksum: the file changed after it was made (damaged or tampered with)."
        )
    if info.vendor != vendor:
        raise BackupForeignEngine(
            f"Backup {info.name} was made from {LABELS.get(info.vendor or '', 'another engine')}, and this "
            f"database is {LABELS[vendor]}: a backup restores only into the engine it came from."
        )


def _check_signature(info: BackupInfo, *, trust_unsigned: bool, actor: str) -> None:
    problem = info.signature_problem
    if not problem:
        return
    if not trust_unsigned:
        raise BackupUnsigned(
            f"Backup {info.name} was refused: {problem}, so this installation did not make it, and anyone who "
            "can write to the backup folder could have put it there. If you brought it from another "
            "installation yourself, a superuser can restore it with the override for unsigned files."
        )
    logger.warning("backup %s used without a valid signature (%s): trusted by %s", info.name, problem, actor or "unknown")


def _unpack(info: BackupInfo, stored: Path, dump: Path) -> None:
    if info.name.endswith(".gpg"):
        raise BackupFailed(f"Backup {info.name} is encrypted: restore it with manage.py dbrestore --decrypt.")
    opener = gzip.open if info.name.endswith(".gz") else open
    try:
        # Reading the whole stream is what checks it: gzip's CRC and length sit at the end.
        with opener(stored, "rb") as source, open(dump, "wb") as target:
            shutil.copyfileobj(source, target, 1 << 20)
    except EOFError as exc:
        raise BackupDamaged(f"Backup {info.name} is incomplete: its compressed stream ends early (truncated).") from exc
    except (gzip.BadGzipFile, zlib.error) as exc:
        raise BackupDamaged(f"Backup {info.name} is damaged: its compressed stream is corrupt ({exc}).") from exc


def _check_content_engine(info: BackupInfo, dump: Path, vendor: str) -> None:
    with open(dump, "rb") as f:
        found = vendor_of_dump(f.read(16))
    if found is None:
        raise BackupDamaged(f"Backup {info.name} is damaged: it holds neither a SQLite nor a PostgreSQL dump.")
    if found != vendor:
        raise BackupForeignEngine(
            f"Backup {info.name} holds a {LABELS[found]} database, and this database is {LABELS[vendor]}: "
            "a backup restores only into the engine it came from."
        )


def _check_schema(info: BackupInfo, applied: list[tuple[str, str]]) -> None:
    loader = MigrationLoader(None, ignore_no_migrations=True, load=True)
    unknown = [
        f"{app}.{name}" for app, name in applied if app in loader.migrated_apps and (app, name) not in loader.disk_migrations
    ]
    if unknown:
        shown = ", ".join(unknown[:5]) + (" …" if len(unknown) > 5 else "")
        raise BackupSchemaNewer(
            f"Backup {info.name} was made by a newer version of Guildhall: its schema has migrations this "
            f"version does not know ({shown}). Upgrade Guildhall first, then restore it."
        )
