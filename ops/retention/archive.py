"""Retention archives: JSON Lines, gzip-compressed, under retention/ in the backup storage.

The backup storage is BACKUP_DIR, or the S3 bucket of BACKUP_STORAGE_URL (see
ops/backups/storage.py). A subfolder of its own keeps archives out of the backup list
and out of backup retention (both look only at the storage's top level). An archive is
written to a temporary file (beside the archives when they are local), flushed to disk
and only then stored under its name, so that a name in the storage always means a whole
archive, and deleting rows waits for that.
"""

from __future__ import annotations

import gzip
import io
import json
import logging
import os
import tempfile
from datetime import datetime
from pathlib import Path
from typing import Any

from ops.backups import storage
from ops.backups.catalog import backup_dir, file_sha256

logger = logging.getLogger(__name__)
FOLDER = "retention"
FORMAT_VERSION = 1


def archive_dir() -> Path:
    """BACKUP_DIR/retention, created private (where archives are when the storage is local)."""
    folder = backup_dir() / FOLDER
    folder.mkdir(mode=0o700, exist_ok=True)
    return folder


class ArchiveWriter:
    """Writes one archive line by line; ``commit()`` stores it, durable, under its final name."""

    def __init__(self, *, started_at: datetime, header: dict[str, Any]) -> None:
        self.stem = f"retention-{started_at:%Y%m%d-%H%M%S}"
        fd, temporary = tempfile.mkstemp(prefix=f".{self.stem}-", suffix=".partial", dir=storage.staging_dir(FOLDER))
        self.temporary = Path(temporary)  # mkstemp makes it private (0600)
        self._raw = os.fdopen(fd, "wb")
        self._gzip = gzip.GzipFile(fileobj=self._raw, mode="wb")
        self._text = io.TextIOWrapper(self._gzip, encoding="utf-8", newline="\n")
        self.write({"@kind": "header", "format": FORMAT_VERSION, **header})

    def write(self, line: dict[str, Any]) -> None:
        self._text.write(json.dumps(line, sort_keys=True, separators=(",", ":"), ensure_ascii=False) + "\n")

    def commit(self) -> str:
        """Flush, fsync and store under a free name; return where it is (a path, or an s3:// URL)."""
        self._text.flush()
        self._gzip.close()
        self._raw.flush()
        os.fsync(self._raw.fileno())
        self._raw.close()
        try:
            for n in range(1, 1000):
                name = f"{FOLDER}/{self.stem}.jsonl.gz" if n == 1 else f"{FOLDER}/{self.stem}-{n}.jsonl.gz"
                try:
                    storage.store_file(name, self.temporary)
                except FileExistsError:
                    continue
                except BaseException:
                    _unstore(name, stored=False)
                    raise
                # Rows are deleted once this returns: the stored copy must read back as written.
                if storage.stored_digest(name) != (file_sha256(self.temporary), self.temporary.stat().st_size):
                    _unstore(name, stored=True)
                    raise storage.StoredCopyMismatch(f"the stored copy of {name} does not match the archive written")
                return storage.storage_location(name)
            raise FileExistsError(f"no free archive name for {self.stem}")
        finally:
            self.temporary.unlink(missing_ok=True)

    def abandon(self) -> None:
        """Drop a half-written archive."""
        for closing in (self._text, self._raw):
            try:
                closing.close()
            except (OSError, ValueError):
                pass
        self.temporary.unlink(missing_ok=True)


def _unstore(name: str, *, stored: bool) -> None:
    """Best effort: remove a stored archive that did not check out, or an upload's parts; retention retries."""
    try:
        if stored:
            storage.delete(name)
        storage.uploads_abort(name=name)
    except storage.STORAGE_ERRORS:
        logger.warning("could not remove the unfinished archive %s; retention will", name, exc_info=True)
