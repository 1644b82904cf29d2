"""Checking a backup before anything is done with it.

The order matters for the message an admin reads: facts first (sidecar, size, checksum,
signature, engine), then the file itself (the whole gzip stream, the dump's own engine, the engine
tool's integrity check) and last the schema recorded inside the dump. The checked,
uncompressed copy is what a restore then uses, so the bytes verified are the bytes restored.
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
    _check_facts(info, vendor)
    _check_signature(info, trust_unsigned=trust_unsigned, actor=actor)
    engine = engine_for(vendor)
    with tempfile.TemporaryDirectory(prefix="guildhall-verify-", dir=dbbackup_settings.TMP_DIR) as folder:
        dump = Path(folder) / f"dump.{engine.EXTENSION}"
        _unpack(info, dump)
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


def _check_facts(info: BackupInfo, vendor: str) -> None:
    if info.problem or info.facts is None:
        raise BackupSidecarMissing(f"Backup {info.name} cannot be verified: {info.problem}.")
    recorded = info.facts["size"]
    if info.size < recorded:
        raise BackupDamaged(
            f"Backup {info.name} is incomplete: the file has {info.size:,} bytes of the {recorded:,} it was "
            "written with (truncated)."
        )
    if info.size != recorded or file_sha256(info.path) != info.sha256:
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


def _unpack(info: BackupInfo, dump: Path) -> None:
    if info.name.endswith(".gpg"):
        raise BackupFailed(f"Backup {info.name} is encrypted: restore it with manage.py dbrestore --decrypt.")
    opener = gzip.open if info.name.endswith(".gz") else open
    try:
        # Reading the whole stream is what checks it: gzip's CRC and length sit at the end.
        with opener(info.path, "rb") as source, open(dump, "wb") as target:
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
