"""BACKUP_DIR as a Django storage: the default home of backups and retention archives.

``BackupDirStorage`` reads BACKUP_DIR at each use (so a changed setting, in a test or a
management command, is followed), keeps files and folders private, and writes a file
under a ``.partial-`` name, flushed to disk, before giving it its name with a hard link,
which fails when the name is taken: a name in the folder always means a whole file, and
two writers never share one. Django's FileSystemStorage writes in place and renames a
taken name instead.
"""

from __future__ import annotations

import contextlib
import errno
import os
import secrets
from pathlib import Path
from typing import Any

from django.conf import settings
from django.core.exceptions import ImproperlyConfigured
from django.core.files import File
from django.core.files.storage import FileSystemStorage


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


class StagedFile(File):
    """A finished local file to store; BackupDirStorage links it in instead of copying it."""

    def __init__(self, path: Path) -> None:
        super().__init__(open(path, "rb"), name=path.name)  # noqa: SIM115 (closed with the File)
        self._staged = path

    def temporary_file_path(self) -> str:
        return str(self._staged)
