"""Retention archives: JSON Lines, gzip-compressed, under BACKUP_DIR/retention/.

A subfolder of its own keeps archives out of the backup list and out of backup
retention (both look only at BACKUP_DIR's own files). An archive is written under a
temporary name, flushed to disk, made private and only then renamed, so that a name
in the folder always means a whole archive, and deleting rows waits for that.
"""

from __future__ import annotations

import gzip
import io
import json
import os
from datetime import datetime
from pathlib import Path
from typing import Any

from ops.backups.catalog import backup_dir

FOLDER = "retention"
FORMAT_VERSION = 1


def archive_dir() -> Path:
    """BACKUP_DIR/retention, created private."""
    folder = backup_dir() / FOLDER
    folder.mkdir(mode=0o700, exist_ok=True)
    return folder


class ArchiveWriter:
    """Writes one archive line by line; ``commit()`` makes it durable under its final name."""

    def __init__(self, *, started_at: datetime, header: dict[str, Any]) -> None:
        folder = archive_dir()
        stem = f"retention-{started_at:%Y%m%d-%H%M%S}"
        self.path = folder / f"{stem}.jsonl.gz"
        n = 1
        while self.path.exists():
            n += 1
            self.path = folder / f"{stem}-{n}.jsonl.gz"
        self.temporary = folder / f".{self.path.name}.partial"
        fd = os.open(self.temporary, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
        self._raw = os.fdopen(fd, "wb")
        self._gzip = gzip.GzipFile(fileobj=self._raw, mode="wb")
        self._text = io.TextIOWrapper(self._gzip, encoding="utf-8", newline="\n")
        self.write({"@kind": "header", "format": FORMAT_VERSION, **header})

    def write(self, line: dict[str, Any]) -> None:
        self._text.write(json.dumps(line, sort_keys=True, separators=(",", ":"), ensure_ascii=False) + "\n")

    def commit(self) -> Path:
        """Flush, fsync, rename into place (and fsync the folder, so the rename survives a crash)."""
        self._text.flush()
        self._gzip.close()
        self._raw.flush()
        os.fsync(self._raw.fileno())
        self._raw.close()
        os.chmod(self.temporary, 0o600)
        os.replace(self.temporary, self.path)
        folder_fd = os.open(self.path.parent, os.O_RDONLY)
        try:
            os.fsync(folder_fd)
        finally:
            os.close(folder_fd)
        return self.path

    def abandon(self) -> None:
        """Drop a half-written archive."""
        for closing in (self._text, self._raw):
            try:
                closing.close()
            except (OSError, ValueError):
                pass
        self.temporary.unlink(missing_ok=True)
