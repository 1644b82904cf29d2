"""A one-line text progress bar with a rate, redrawn in place at most a few times a second."""

from __future__ import annotations

import time
from collections.abc import Callable

Write = Callable[[str], None]  # writes text as it is (no newline added)
_WIDTH = 24
_EVERY_SECONDS = 0.5


class ProgressBar:
    """``label [#######.....]  42%  420,000/1,000,000  210,000 rows/s``, then a final line."""

    def __init__(self, write: Write, label: str, total: int) -> None:
        self.write, self.label, self.total = write, label, total
        self.done = 0
        self.started = self._drawn = time.monotonic()

    def advance(self, rows: int) -> None:
        self.done += rows
        now = time.monotonic()
        if now - self._drawn >= _EVERY_SECONDS:
            self._drawn = now
            self.write("\r" + self._line(now))

    def finish(self) -> float:
        """Draw the final line; return the seconds taken."""
        now = time.monotonic()
        self.write("\r" + self._line(now) + "\n")
        return now - self.started

    def _line(self, now: float) -> str:
        share = min(1.0, self.done / self.total) if self.total else 1.0
        filled = round(share * _WIDTH)
        rate = self.done / max(now - self.started, 1e-6)
        return (
            f"  {self.label:<36} [{'#' * filled}{'.' * (_WIDTH - filled)}] {share:4.0%}"
            f"  {self.done:,}/{self.total:,}  {rate:,.0f} rows/s"
        )
