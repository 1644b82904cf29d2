"""The one place backups and retention archives are kept: Django's ``storages["dbbackup"]``.

That is BACKUP_DIR by default (``BackupDirStorage``, in storage_local.py) or an S3 bucket when
BACKUP_STORAGE_URL is set (django-storages' S3 backend, see config/backup_storage.py);
django-dbbackup's own commands write through the same storage. The backup code speaks
only the storage API, plus a few S3 calls the API lacks: one listing with sizes and
dates (instead of a request per file), streamed reads (instead of a spooled copy) and
aborting multipart uploads that a failed upload left behind.
"""

from __future__ import annotations

import contextlib
import hashlib
import os
import secrets
import shutil
from collections.abc import Callable
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path
from typing import IO

from boto3.exceptions import Boto3Error
from botocore.exceptions import BotoCoreError, ClientError
from dbbackup import settings as dbbackup_settings
from django.core.files.base import ContentFile
from django.core.files.storage import FileSystemStorage, Storage, storages
from storages.backends.s3 import S3Storage
from storages.utils import clean_name, safe_join

from ops.backups.storage_local import StagedFile

ALIAS = "dbbackup"
# What a storage raises when the disk, the network or the bucket says no.
STORAGE_ERRORS: tuple[type[Exception], ...] = (OSError, BotoCoreError, ClientError, Boto3Error)
_CHUNK = 1 << 20
_SMALL_CACHE_SIZE = 1024
SMALL_LIMIT = 1 << 20  # a sidecar is a few kB; anything larger is not read


class StoredCopyMismatch(OSError):
    """The stored object is not the bytes that were sent (size or checksum differ)."""


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
            return _small(f.read(SMALL_LIMIT + 1), name)
    key = _key(s3, name)
    if tag and (key, tag) in _small_cache:
        return _small_cache[(key, tag)]
    try:
        got = s3.connection.meta.client.get_object(Bucket=s3.bucket_name, Key=key)
    except ClientError as exc:
        if _not_found(exc):
            raise FileNotFoundError(name) from None
        raise
    with contextlib.closing(got["Body"]) as body:
        data = _small(body.read(SMALL_LIMIT + 1), name)
    if len(_small_cache) >= _SMALL_CACHE_SIZE:
        _small_cache.clear()
    _small_cache[(key, got.get("ETag", tag))] = data
    return data


def _small(data: bytes, name: str) -> bytes:
    if len(data) > SMALL_LIMIT:
        raise ValueError(f"{name} is over {SMALL_LIMIT} bytes: not a sidecar")
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
    with StagedFile(source) as content:
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


def uploads_abort(
    *, name: str | None = None, started_before: datetime | None = None, ours: Callable[[str], bool] | None = None
) -> int:
    """Abort the unfinished multipart uploads of ``name``, or of the names ``ours`` accepts started before a time; S3 only.

    An upload cut off half way leaves its parts in the bucket, invisible to listings but
    billed; the upload's own clean-up cannot run when the store is unreachable, so a
    failed backup and retention both try again. ``ours`` keeps a shared bucket's other
    uploads out of it.
    """
    s3 = _s3(backup_storage())
    if s3 is None:
        return 0
    client = s3.connection.meta.client
    base = _key(s3, "")
    prefix = _key(s3, name) if name else base
    aborted = 0
    for page in client.get_paginator("list_multipart_uploads").paginate(Bucket=s3.bucket_name, Prefix=prefix):
        for upload in page.get("Uploads", ()):
            if name and upload["Key"] != prefix:
                continue
            if ours is not None and not ours(upload["Key"][len(base) :]):
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
