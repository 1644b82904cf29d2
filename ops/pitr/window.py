"""What a point-in-time recovery engine reports: the window it can restore into."""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import datetime
from typing import Protocol


@dataclass(frozen=True)
class RecoveryWindow:
    """The moments a restore can reach, and how fresh the newest archived change is.

    ``earliest``/``latest`` are the first and last restorable moments (UTC);
    ``last_archived`` names the newest archived unit (a WAL segment, a Litestream LTX file)
    and ``last_archived_at`` when it was archived. ``problem`` is a one-line reason when the
    engine is configured but not archiving (empty when healthy).
    """

    engine: str  # "pgbackrest" or "litestream"
    repository: str  # where the archive lives (a path or an s3:// URL), no credentials
    earliest: datetime | None
    latest: datetime | None
    last_archived: str = ""
    last_archived_at: datetime | None = None
    problem: str = ""
    backups: list[dict] = field(default_factory=list)  # engine-specific rows for the Backups page

    def archive_age_seconds(self, now: datetime) -> float | None:
        if self.last_archived_at is None:
            return None
        return max(0.0, (now - self.last_archived_at).total_seconds())


class RecoveryEngine(Protocol):
    """What ``pitr_status``, ``pitr_restore`` and the Backups page call on either engine."""

    def configured(self) -> bool: ...

    def window(self) -> RecoveryWindow: ...

    def restore(self, moment: datetime, into: str, *, progress=None) -> None: ...
