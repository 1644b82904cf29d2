"""The one place backups and retention archives are kept: Django's ``storages["dbbackup"]``.

That is BACKUP_DIR by default (``BackupDirStorage``, below) or an S3 bucket when
BACKUP_STORAGE_URL is set (django-storages' S3 backend, see config/backup_storage.py);
django-dbbackup's own commands write through the same storage. The backup code speaks
only the storage API, plus a few S3 calls the API lacks: one listing with sizes and
dates (instead of a request per file), streamed reads (instead of a spooled copy) and
aborting multipart uploads that a failed upload left behind.
"""

from __future__ import annotations

import contextlib
import errno
import hashlib
import os
import secrets
import shutil
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path
from typing import IO, Any

from boto3.exceptions import Boto3Error
from botocore.exceptions import BotoCoreError, ClientError
from dbbackup import settings as dbbackup_settings
from django.conf import settings
from django.core.exceptions import ImproperlyConfigured
from django.core.files import File
from django.core.files.base import ContentFile
from django.core.files.storage import FileSystemStorage, Storage, storages
from storages.backends.s3 import S3Storage
from storages.utils import clean_name, safe_join

ALIAS = "dbbackup"
# What a storage raises when the disk, the network or the bucket says no.
STORAGE_ERRORS: tuple[type[Exception], ...] = (OSError, BotoCoreError, ClientError, Boto3Error)
_CHUNK = 1 << 20
_SMALL_CACHE_SIZE = 1024


class StoredCopyMismatch(OSError):
    """The stored object is not the bytes that were sent (size or checksum differ)."""


def backup_dir() -> Path:
    """BACKUP_DIR, created private; refused when it lies where the web server serves files."""
    folder = Path(settings.BACKUP_DIR).resolve()
    for served in _served_dirs():
        if folder == served or served in folder.parents:
            raise ImproperlyConfigured(f"BACKUP_DIR ({folder}) must not be inside a served directory ({served})")
    folder.mkdir(mode=0o700, parents=True, exist_ok=True)
    return folder


def _served_dirs() -> list[Path]:
    dirs = [settings.STATIC_ROOT, getattr(settings, "MEDIA_ROOT", "")]
    dirs += [d[1] if isinstance(d, (list, tuple)) else d for d in getattr(settings, "STATICFILES_DIRS", [])]
    return [Path(d).resolve() for d in dirs if d]


class BackupDirStorage(FileSystemStorage):
    """BACKUP_DIR as a storage: followed when the setting changes, private, and never a half-written file.

    A file is written under a ``.partial-`` name, flushed to disk and only then linked to
    its name, which fails if the name is taken: a name in the folder always means a whole
    file, and two writers never share one.
    """

    def __init__(self, location: str | None = None, **kwargs: Any) -> None:
        kwargs.setdefault("file_permissions_mode", 0o600)
        kwargs.setdefault("directory_permissions_mode", 0o700)
        super().__init__(location=location, **kwargs)
        self._fixed_location = location

    @property
    def base_location(self) -> str:
        return str(self._fixed_location) if self._fixed_location is not None else str(settings.BACKUP_DIR)

    @property
    def location(self) -> str:
        return os.path.abspath(self._fixed_location) if self._fixed_location is not None else str(backup_dir())

    def get_available_name(self, name: str, max_length: int | None = None) -> str:
        return name  # taken names fail in _save instead of being renamed

    def _save(self, name: str, content: Any) -> str:
        full = self.path(name)
        folder = os.path.dirname(full)
        os.makedirs(folder, mode=0o700, exist_ok=True)
        staged = getattr(content, "temporary_file_path", None)
        if staged is not None:
            try:
                _publish(staged(), full, move=False)
            except FileExistsError:
                raise
            except OSError:
                pass  # another file system, or no hard links: copied below
            else:
                _fsync_dir(folder)
                return name
        partial = os.path.join(folder, f".partial-{secrets.token_hex(6)}-{os.path.basename(full)}")
        try:
            with os.fdopen(os.open(partial, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600), "wb") as out:
                for chunk in content.chunks():
                    out.write(chunk)
                out.flush()
                os.fsync(out.fileno())
            _publish(partial, full, move=True)
        finally:
            with contextlib.suppress(FileNotFoundError):
                os.unlink(partial)
        _fsync_dir(folder)
        return name


def _publish(source: str, target: str, *, move: bool) -> None:
    """Give ``source``'s file the name ``target`` (a hard link); FileExistsError when it is taken.

    Where the file system has no hard links, ``move`` renames it after checking the name
    (atomic, though not exclusive); otherwise that OSError is raised for the caller to copy.
    """
    try:
        os.link(source, target)
    except FileExistsError:
        raise
    except OSError as exc:
        if not move or exc.errno not in (errno.EPERM, errno.ENOTSUP, errno.ENOSYS):
            raise
        if os.path.lexists(target):
            raise FileExistsError(target) from None
        os.rename(source, target)


def _fsync_dir(folder: str) -> None:
    fd = os.open(folder, os.O_RDONLY)
    try:
        os.fsync(fd)
    finally:
        os.close(fd)


class _StagedFile(File):
    """A finished local file to store; BackupDirStorage links it in instead of copying it."""

    def __init__(self, path: Path) -> None:
        super().__init__(open(path, "rb"), name=path.name)  # noqa: SIM115 (closed with the File)
        self._staged = path

    def temporary_file_path(self) -> str:
        return str(self._staged)


@dataclass(frozen=True)
class Entry:
    """A stored file: its size, when it was written and a tag that changes with its content (S3's ETag)."""

    name: str
    size: int
    modified: datetime
    tag: str = ""


def backup_storage() -> Storage:
    return storages[ALIAS]


def _s3(storage: Storage) -> S3Storage | None:
    return storage if isinstance(storage, S3Storage) else None


def _key(storage: S3Storage, name: str) -> str:
    return safe_join(storage.location, clean_name(name))


def _not_found(exc: ClientError) -> bool:
    return exc.response.get("Error", {}).get("Code") in ("404", "NoSuchKey", "NotFound")


def storage_location(name: str = "") -> str:
    """Where a stored file (or the whole store, for "") is, for people: a path or an s3:// URL."""
    storage = backup_storage()
    s3 = _s3(storage)
    if s3 is not None:
        return f"s3://{s3.bucket_name}/{_key(s3, name)}".rstrip("/")
    if isinstance(storage, FileSystemStorage):
        return storage.path(name) if name else str(storage.location)
    return name


def local_path(name: str) -> Path | None:
    """The stored file's own path when the storage is a local folder (no copy needed), else None."""
    storage = backup_storage()
    return Path(storage.path(name)) if isinstance(storage, FileSystemStorage) else None


def staging_dir(folder: str = "") -> Path:
    """Where to build a file before storing it: beside it for a local folder (a link, not a copy), else DBBACKUP_TMP_DIR."""
    storage = backup_storage()
    if isinstance(storage, FileSystemStorage):
        path = Path(storage.path(folder)) if folder else Path(storage.location)
        path.mkdir(mode=0o700, parents=True, exist_ok=True)
        return path
    return Path(dbbackup_settings.TMP_DIR)


def entries(folder: str = "") -> dict[str, Entry]:
    """The files directly in ``folder`` of the storage, by name."""
    storage = backup_storage()
    s3 = _s3(storage)
    if s3 is not None:
        prefix = _key(s3, folder)
        if prefix and not prefix.endswith("/"):
            prefix += "/"
        found = {}
        pages = s3.connection.meta.client.get_paginator("list_objects_v2").paginate(
            Bucket=s3.bucket_name, Prefix=prefix, Delimiter="/"
        )
        for page in pages:
            for item in page.get("Contents", ()):
                name = item["Key"][len(prefix) :]
                if name:
                    found[name] = Entry(name, item["Size"], item["LastModified"], item.get("ETag", ""))
        return found
    if isinstance(storage, FileSystemStorage):
        try:
            scanned = os.scandir(storage.path(folder) if folder else storage.location)
        except FileNotFoundError:
            return {}
        with scanned as items:
            return {
                item.name: Entry(item.name, (stat := item.stat()).st_size, datetime.fromtimestamp(stat.st_mtime, tz=UTC))
                for item in items
                if item.is_file(follow_symlinks=False)
            }
    files = storage.listdir(folder)[1]
    names = [f"{folder}/{f}" if folder else f for f in files]
    return {f: Entry(f, storage.size(n), storage.get_modified_time(n)) for f, n in zip(files, names)}


def entry(name: str) -> Entry | None:
    """One stored file, or None when there is none (a symlink in a local folder counts as none)."""
    storage = backup_storage()
    s3 = _s3(storage)
    if s3 is not None:
        try:
            head = s3.connection.meta.client.head_object(Bucket=s3.bucket_name, Key=_key(s3, name))
        except ClientError as exc:
            if _not_found(exc):
                return None
            raise
        return Entry(name, head["ContentLength"], head["LastModified"], head.get("ETag", ""))
    path = local_path(name)
    if path is not None:
        try:
            stat = path.lstat()
        except FileNotFoundError:
            return None
        if not path.is_file() or path.is_symlink():
            return None
        return Entry(name, stat.st_size, datetime.fromtimestamp(stat.st_mtime, tz=UTC))
    if not storage.exists(name):
        return None
    return Entry(name, storage.size(name), storage.get_modified_time(name))


_small_cache: dict[tuple[str, str], bytes] = {}


def read_small(name: str, *, tag: str = "") -> bytes:
    """A small stored file's bytes (a sidecar); FileNotFoundError when missing.

    On S3 a file is cached by its ETag: sidecars never change once written, and the
    Backups page would otherwise fetch every one of them on each visit.
    """
    storage = backup_storage()
    s3 = _s3(storage)
    if s3 is None:
        with storage.open(name, "rb") as f:
            return f.read()
    key = _key(s3, name)
    if tag and (key, tag) in _small_cache:
        return _small_cache[(key, tag)]
    try:
        got = s3.connection.meta.client.get_object(Bucket=s3.bucket_name, Key=key)
    except ClientError as exc:
        if _not_found(exc):
            raise FileNotFoundError(name) from None
        raise
    data = got["Body"].read()
    if len(_small_cache) >= _SMALL_CACHE_SIZE:
        _small_cache.clear()
    _small_cache[(key, got.get("ETag", tag))] = data
    return data


def open_stream(name: str) -> IO[bytes]:
    """A stored file to read once from the start, streamed (FileNotFoundError when missing)."""
    storage = backup_storage()
    s3 = _s3(storage)
    if s3 is None:
        return storage.open(name, "rb")
    try:
        return s3.connection.meta.client.get_object(Bucket=s3.bucket_name, Key=_key(s3, name))["Body"]
    except ClientError as exc:
        if _not_found(exc):
            raise FileNotFoundError(name) from None
        raise


def download(name: str, dest: Path) -> None:
    """Copy a stored file to the local file ``dest`` (streamed to disk, never held in memory)."""
    storage = backup_storage()
    s3 = _s3(storage)
    if s3 is not None:
        s3.connection.meta.client.download_file(s3.bucket_name, _key(s3, name), str(dest), Config=s3.transfer_config)
        return
    with contextlib.closing(open_stream(name)) as source, open(dest, "wb") as target:
        shutil.copyfileobj(source, target, _CHUNK)


def stored_digest(name: str) -> tuple[str, int]:
    """The sha256 and size of the stored bytes, read back from the storage."""
    digest, size = hashlib.sha256(), 0
    with contextlib.closing(open_stream(name)) as source:
        while chunk := source.read(_CHUNK):
            digest.update(chunk)
            size += len(chunk)
    return digest.hexdigest(), size


def store_file(name: str, source: Path) -> None:
    """Store a local file under ``name``; FileExistsError when the name is taken."""
    storage = backup_storage()
    if _s3(storage) is not None and storage.exists(name):
        raise FileExistsError(name)  # S3 has no exclusive create: checked first, names are per second anyway
    with _StagedFile(source) as content:
        saved = storage.save(name, content)
    if saved != name:  # a storage that renames instead of refusing
        storage.delete(saved)
        raise FileExistsError(name)


def store_bytes(name: str, data: bytes) -> None:
    """Store a small file under ``name``; FileExistsError when the name is taken."""
    storage = backup_storage()
    if _s3(storage) is not None and storage.exists(name):
        raise FileExistsError(name)
    saved = storage.save(name, ContentFile(data, name=os.path.basename(name)))
    if saved != name:
        storage.delete(saved)
        raise FileExistsError(name)


def delete(name: str) -> None:
    """Remove a stored file (gone already is fine)."""
    backup_storage().delete(name)


def uploads_abort(*, name: str | None = None, started_before: datetime | None = None) -> int:
    """Abort the unfinished multipart uploads of ``name`` (or of the whole prefix started before a time); S3 only.

    An upload cut off half way leaves its parts in the bucket, invisible to listings but
    billed; the upload's own clean-up cannot run when the store is unreachable, so a
    failed backup and retention both try again.
    """
    s3 = _s3(backup_storage())
    if s3 is None:
        return 0
    client = s3.connection.meta.client
    prefix = _key(s3, name) if name else _key(s3, "")
    aborted = 0
    for page in client.get_paginator("list_multipart_uploads").paginate(Bucket=s3.bucket_name, Prefix=prefix):
        for upload in page.get("Uploads", ()):
            if name and upload["Key"] != prefix:
                continue
            if started_before is not None and upload["Initiated"] >= started_before:
                continue
            client.abort_multipart_upload(Bucket=s3.bucket_name, Key=upload["Key"], UploadId=upload["UploadId"])
            aborted += 1
    return aborted


def fetch(name: str, folder: Path) -> Path:
    """A local file with the stored bytes: the file itself in a local folder, else a copy downloaded into ``folder``."""
    path = local_path(name)
    if path is not None:
        return path
    copy = folder / f"download-{secrets.token_hex(4)}"
    download(name, copy)
    return copy
