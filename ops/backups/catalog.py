"""Where backups live and what is known of each: files in the backup storage, each with a JSON sidecar.

The storage is ``storages["dbbackup"]`` (BACKUP_DIR, or an S3 bucket: see storage.py).

The sidecar is django-dbbackup's ``<file>.metadata`` (``engine`` and ``connector``, so that
``manage.py dbrestore -z -i <file>`` restores our files too) with Guildhall's facts added:
sha256, size, vendor, kind, created_at, created_by, the latest applied migration per app
and the row count per table, and a ``signature``: an HMAC of all those facts keyed by a
key derived from SECRET_KEY. The checksum proves the file is the one the sidecar
describes; the signature proves this installation wrote the sidecar, so a file planted in
the storage (shared) with a freshly computed checksum is still refused. Files made by
``manage.py dbbackup`` are listed too, but without a checksum they cannot be verified here.

A backup is stored data first, then sidecar: the sidecar is written only once the stored
copy's size and checksum, read back from the storage, match what was sent, so a backup
whose upload broke off never has one and is never taken for a good backup.
"""

from __future__ import annotations

import hashlib
import json
import logging
import re
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path

from boto3.exceptions import Boto3Error
from botocore.exceptions import BotoCoreError, ClientError
from django.conf import settings
from django.utils.crypto import constant_time_compare, salted_hmac

from ops.backups import storage
from ops.backups.engines import LABELS, vendor_of_engine
from ops.backups.errors import BackupNotFound, BackupStorageUnreachable
from ops.backups.storage import STORAGE_ERRORS, Entry, StoredCopyMismatch
from ops.backups.storage_local import backup_dir

__all__ = ["BackupInfo", "backup_dir", "backup_files_remove", "backup_get", "backup_store", "backups_list", "file_sha256"]

logger = logging.getLogger(__name__)
_FACTS_ERRORS: tuple[type[Exception], ...] = (*STORAGE_ERRORS, ValueError)

SIDECAR_SUFFIX = ".metadata"
PREFIX = "guildhall-"
KINDS = ("manual", "scheduled", "pre-restore", "pre-migrate")
REQUIRED_FACTS = ("sha256", "size", "vendor")
SIGNATURE_SALT = "guildhall.ops.backups.sidecar"
_NAME = re.compile(r"[A-Za-z0-9][A-Za-z0-9._-]{0,200}")
_DUMP_EXTENSIONS = (".sqlite3", ".psql.bin", ".psql", ".dump")  # django-dbbackup's connectors'


def is_backup_name(name: str) -> bool:
    """A plain file name (no path) with one of the dump extensions, optionally .gz/.gpg."""
    if not _NAME.fullmatch(name) or name.endswith(SIDECAR_SUFFIX):
        return False
    stem = name.removesuffix(".gpg").removesuffix(".gz")
    return stem.endswith(_DUMP_EXTENSIONS)


@dataclass(frozen=True)
class BackupInfo:
    """One backup file and its sidecar's facts (``facts`` is None when the sidecar is missing or unreadable).

    ``path`` is the file's own path when the storage is a local folder, None when it is remote.
    """

    name: str
    path: Path | None
    size: int
    created_at: datetime
    facts: dict | None

    @property
    def vendor(self) -> str | None:
        facts = self.facts or {}
        return facts.get("vendor") or vendor_of_engine(facts.get("engine"))

    @property
    def engine_label(self) -> str:
        return LABELS.get(self.vendor or "", "unknown")

    @property
    def kind(self) -> str:
        if self.facts is None:
            return "unknown"
        return self.facts.get("kind") or "manage.py dbbackup"

    @property
    def created_by(self) -> str:
        return (self.facts or {}).get("created_by", "")

    @property
    def sha256(self) -> str:
        return (self.facts or {}).get("sha256", "")

    @property
    def short_checksum(self) -> str:
        return self.sha256[:12]

    @property
    def tables(self) -> dict[str, int] | None:
        return (self.facts or {}).get("tables")

    @property
    def migrations(self) -> dict[str, str]:
        return (self.facts or {}).get("migrations", {})

    @property
    def problem(self) -> str:
        """Why this backup cannot be verified here ("" when it can)."""
        if self.facts is None:
            return "its sidecar (.metadata) is missing or unreadable"
        if any(key not in self.facts for key in REQUIRED_FACTS):
            return "its sidecar has no checksum (made by manage.py dbbackup?)"
        if not isinstance(self.facts["sha256"], str) or type(self.facts["size"]) is not int:
            return "its sidecar is malformed"
        return ""

    @property
    def signature_problem(self) -> str:
        """Why this installation cannot vouch for the sidecar ("" when its signature is ours)."""
        if self.facts is None:
            return "it has no sidecar"
        signature = self.facts.get("signature")
        if not signature:
            return "its sidecar is not signed"
        if not isinstance(signature, str) or not any(
            constant_time_compare(signature, facts_signature(self.facts, secret=secret)) for secret in _secrets()
        ):
            return "its sidecar's signature is not this installation's (another SECRET_KEY, or the sidecar was edited)"
        return ""


def _secrets() -> list[str]:
    # SECRET_KEY_FALLBACKS keep backups made before a key rotation restorable.
    return [settings.SECRET_KEY, *getattr(settings, "SECRET_KEY_FALLBACKS", [])]


def facts_signature(facts: dict, *, secret: str | None = None) -> str:
    """The HMAC-SHA256 of a sidecar's facts (all but the signature), keyed by a key derived from SECRET_KEY."""
    payload = json.dumps({k: v for k, v in facts.items() if k != "signature"}, sort_keys=True, separators=(",", ":"))
    return salted_hmac(SIGNATURE_SALT, payload, secret=secret, algorithm="sha256").hexdigest()


def sidecar_path(path: Path) -> Path:
    return path.with_name(path.name + SIDECAR_SUFFIX)


def sidecar_name(name: str) -> str:
    return name + SIDECAR_SUFFIX


def _read_facts(name: str, tag: str = "") -> dict | None:
    try:
        facts = json.loads(storage.read_small(sidecar_name(name), tag=tag))
    except _FACTS_ERRORS:
        return None
    return facts if isinstance(facts, dict) else None


def _info(found: Entry, facts: dict | None) -> BackupInfo:
    created_at = found.modified
    if facts and isinstance(facts.get("created_at"), str):
        try:
            parsed = datetime.fromisoformat(facts["created_at"])
            created_at = parsed if parsed.tzinfo else parsed.replace(tzinfo=UTC)
        except ValueError:
            pass
    return BackupInfo(name=found.name, path=storage.local_path(found.name), size=found.size, created_at=created_at, facts=facts)


def _unreachable(exc: Exception) -> BackupStorageUnreachable:
    logger.warning("the backup storage %s could not be read", storage.storage_location(), exc_info=True)
    return BackupStorageUnreachable(
        f"The backups in {storage.storage_location()} cannot be read right now ({type(exc).__name__}); "
        "the server log has the details."
    )


def backups_list() -> list[BackupInfo]:
    """Every backup in the storage, newest first; BackupStorageUnreachable when it cannot be read."""
    try:
        found = storage.entries()
    except (BotoCoreError, ClientError, Boto3Error) as exc:
        raise _unreachable(exc) from exc
    infos = []
    for name, item in found.items():
        if is_backup_name(name):
            sidecar = found.get(sidecar_name(name))
            infos.append(_info(item, _read_facts(name, sidecar.tag) if sidecar is not None else None))
    return sorted(infos, key=lambda b: (b.created_at, b.name), reverse=True)


def backup_get(name: str) -> BackupInfo:
    """One backup by file name; BackupNotFound for anything else (including paths)."""
    if not isinstance(name, str) or not is_backup_name(name):
        raise BackupNotFound("There is no such backup.")
    try:
        found = storage.entry(name)
    except (BotoCoreError, ClientError, Boto3Error) as exc:
        raise _unreachable(exc) from exc
    if found is None:
        raise BackupNotFound(f"There is no backup named {name}.")
    return _info(found, _read_facts(name))


def backup_files_remove(info: BackupInfo) -> None:
    """Remove a backup's file and its sidecar (either may be gone already)."""
    storage.delete(info.name)
    storage.delete(sidecar_name(info.name))


def file_sha256(path: Path) -> str:
    digest = hashlib.sha256()
    with open(path, "rb") as f:
        while chunk := f.read(1 << 20):
            digest.update(chunk)
    return digest.hexdigest()


def backup_store(staged: Path, *, stem: str, suffix: str, facts: dict) -> str:
    """Store a finished backup file under a free name, then its signed sidecar; return the name.

    The sidecar comes last, once the stored copy reads back with the size and checksum in
    ``facts``: until then the backup is not listed as verifiable. Whatever fails, what this
    call stored is removed again (as far as the storage can still be reached) and the
    error is raised.
    """
    signed = json.dumps({**facts, "signature": facts_signature(facts)}, indent=1, sort_keys=True).encode()
    attempted = name = None
    try:
        for n in range(1, 1000):
            attempted = f"{stem}{suffix}" if n == 1 else f"{stem}-{n}{suffix}"
            if storage.entry(sidecar_name(attempted)) is not None:
                continue
            try:
                storage.store_file(attempted, staged)
            except FileExistsError:
                continue
            name = attempted
            break
        else:
            raise FileExistsError(f"no free backup name for {stem}")
        sha256, size = storage.stored_digest(name)
        if (sha256, size) != (facts["sha256"], facts["size"]):
            raise StoredCopyMismatch(
                f"the stored copy of {name} has {size} bytes and sha256 {sha256[:12]}, "
                f"not {facts['size']} and {facts['sha256'][:12]}"
            )
        storage.store_bytes(sidecar_name(name), signed)
    except BaseException:
        _unstore(stored=name, attempted=attempted)
        raise
    return name


def _unstore(*, stored: str | None, attempted: str | None) -> None:
    """Best effort: remove what a failed store left (the file, a sidecar whose reply was lost, an upload's parts).

    Retention sweeps up what cannot be reached now.
    """
    try:
        if stored is not None:
            storage.delete(sidecar_name(stored))
            storage.delete(stored)
        if attempted is not None:
            storage.uploads_abort(name=attempted)
    except STORAGE_ERRORS:
        logger.warning("could not remove the half-stored backup %s; retention will", attempted, exc_info=True)
