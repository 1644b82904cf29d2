"""Where backups live and what is known of each: files in BACKUP_DIR, each with a JSON sidecar.

The sidecar is django-dbbackup's ``<file>.metadata`` (``engine`` and ``connector``, so that
``manage.py dbrestore -z -i <file>`` restores our files too) with Guildhall's facts added:
sha256, size, vendor, kind, created_at, created_by, the latest applied migration per app
and the row count per table, and a ``signature``: an HMAC of all those facts keyed by a
key derived from SECRET_KEY. The checksum proves the file is the one the sidecar
describes; the signature proves this installation wrote the sidecar, so a file planted in
BACKUP_DIR (shared storage) with a freshly computed checksum is still refused. Files made
by ``manage.py dbbackup`` are listed too, but without a checksum they cannot be verified here.
"""

from __future__ import annotations

import hashlib
import json
import os
import re
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path

from django.conf import settings
from django.core.exceptions import ImproperlyConfigured
from django.utils.crypto import constant_time_compare, salted_hmac

from ops.backups.engines import LABELS, vendor_of_engine
from ops.backups.errors import BackupNotFound

SIDECAR_SUFFIX = ".metadata"
PREFIX = "guildhall-"
KINDS = ("manual", "scheduled", "pre-restore", "pre-migrate")
REQUIRED_FACTS = ("sha256", "size", "vendor")
SIGNATURE_SALT = "guildhall.ops.backups.sidecar"
_NAME = re.compile(r"[A-Za-z0-9][A-Za-z0-9._-]{0,200}")
_DUMP_EXTENSIONS = (".sqlite3", ".psql.bin", ".psql", ".dump")  # django-dbbackup's connectors'


def backup_dir() -> Path:
    """BACKUP_DIR, created private; refused when it lies where the web server serves files."""
    folder = Path(settings.BACKUP_DIR).resolve()
    for served in _served_dirs():
        if folder == served or served in folder.parents:
            raise ImproperlyConfigured(f"BACKUP_DIR ({folder}) must not be inside a served directory ({served})")
    folder.mkdir(mode=0o700, parents=True, exist_ok=True)
    return folder


def _served_dirs():
    dirs = [settings.STATIC_ROOT, getattr(settings, "MEDIA_ROOT", "")]
    dirs += [d[1] if isinstance(d, (list, tuple)) else d for d in getattr(settings, "STATICFILES_DIRS", [])]
    return [Path(d).resolve() for d in dirs if d]


def is_backup_name(name: str) -> bool:
    """A plain file name (no path) with one of the dump extensions, optionally .gz/.gpg."""
    if not _NAME.fullmatch(name) or name.endswith(SIDECAR_SUFFIX):
        return False
    stem = name.removesuffix(".gpg").removesuffix(".gz")
    return stem.endswith(_DUMP_EXTENSIONS)


@dataclass(frozen=True)
class BackupInfo:
    """One backup file and its sidecar's facts (``facts`` is None when the sidecar is missing or unreadable)."""

    name: str
    path: Path
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


def _read_facts(path: Path) -> dict | None:
    try:
        facts = json.loads(sidecar_path(path).read_text())
    except (OSError, ValueError):
        return None
    return facts if isinstance(facts, dict) else None


def _info(path: Path, stat: os.stat_result) -> BackupInfo:
    facts = _read_facts(path)
    created_at = datetime.fromtimestamp(stat.st_mtime, tz=UTC)
    if facts and isinstance(facts.get("created_at"), str):
        try:
            parsed = datetime.fromisoformat(facts["created_at"])
            created_at = parsed if parsed.tzinfo else parsed.replace(tzinfo=UTC)
        except ValueError:
            pass
    return BackupInfo(name=path.name, path=path, size=stat.st_size, created_at=created_at, facts=facts)


def backups_list() -> list[BackupInfo]:
    """Every backup in BACKUP_DIR, newest first."""
    folder = backup_dir()
    infos = []
    with os.scandir(folder) as entries:
        for entry in entries:
            if is_backup_name(entry.name) and entry.is_file(follow_symlinks=False):
                infos.append(_info(folder / entry.name, entry.stat()))
    return sorted(infos, key=lambda b: (b.created_at, b.name), reverse=True)


def backup_get(name: str) -> BackupInfo:
    """One backup by file name; BackupNotFound for anything else (including paths)."""
    if not isinstance(name, str) or not is_backup_name(name):
        raise BackupNotFound("There is no such backup.")
    path = backup_dir() / name
    try:
        stat = path.lstat()
    except FileNotFoundError:
        raise BackupNotFound(f"There is no backup named {name}.") from None
    if not path.is_file() or path.is_symlink():
        raise BackupNotFound(f"There is no backup named {name}.")
    return _info(path, stat)


def backup_files_remove(info: BackupInfo) -> None:
    """Remove a backup's file and its sidecar (either may be gone already)."""
    info.path.unlink(missing_ok=True)
    sidecar_path(info.path).unlink(missing_ok=True)


def file_sha256(path: Path) -> str:
    digest = hashlib.sha256()
    with open(path, "rb") as f:
        while chunk := f.read(1 << 20):
            digest.update(chunk)
    return digest.hexdigest()


def sidecar_reserve(folder: Path, stem: str, suffix: str, facts: dict) -> Path:
    """Claim a free backup name by creating its sidecar exclusively; return the backup's path.

    The sidecar comes first so that a backup file is never seen without its facts; it is
    written signed.
    """
    facts = {**facts, "signature": facts_signature(facts)}
    for n in range(1, 1000):
        path = folder / (f"{stem}{suffix}" if n == 1 else f"{stem}-{n}{suffix}")
        try:
            fd = os.open(sidecar_path(path), os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
        except FileExistsError:
            continue
        with os.fdopen(fd, "w") as f:
            json.dump(facts, f, indent=1, sort_keys=True)
            f.flush()
            os.fsync(f.fileno())
        return path
    raise RuntimeError(f"no free backup name for {stem}")
