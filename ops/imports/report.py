"""What an import did, row by row: imported, updated, unchanged, refused (with where and why)."""

from __future__ import annotations

from collections import Counter
from collections.abc import Callable
from dataclasses import dataclass, field

from config.errors import ApplicationError

Write = Callable[[str], None]  # writes text as it is (no newline added)
IMPORTED, UPDATED, UNCHANGED = "imported", "updated", "unchanged"


class ImportRefused(ApplicationError):
    """A whole import (or one row of it) can't go in; the message says which and why."""


@dataclass
class ImportReport:
    """Counts per kind of row and outcome, the refused rows with their reasons, and notes (renames)."""

    dry_run: bool = False
    counts: Counter[tuple[str, str]] = field(default_factory=Counter)
    refused: list[tuple[str, str, str]] = field(default_factory=list)  # (kind, where, reason)
    notes: list[str] = field(default_factory=list)

    def count(self, kind: str, outcome: str) -> None:
        self.counts[(kind, outcome)] += 1

    def refuse(self, kind: str, where: str, reason: str) -> None:
        self.refused.append((kind, where, reason))

    def total(self, outcome: str) -> int:
        return sum(n for (_, o), n in self.counts.items() if o == outcome)

    @property
    def changed(self) -> int:
        return self.total(IMPORTED) + self.total(UPDATED)

    def lines(self) -> list[str]:
        """The summary, one line per kind of row, then the refusals and the notes."""
        kinds = sorted({k for k, _ in self.counts} | {k for k, _, _ in self.refused})
        verb = "would be " if self.dry_run else ""
        out = []
        for kind in kinds:
            refused = sum(1 for k, _, _ in self.refused if k == kind)
            parts = [f"{self.counts[(kind, o)]:,} {verb}{o}" for o in (IMPORTED, UPDATED, UNCHANGED)]
            out.append(f"{kind}: " + ", ".join(parts) + f", {refused:,} refused")
        out += [f"  refused {kind} {where}: {reason}" for kind, where, reason in self.refused]
        out += self.notes
        if not self.changed:
            out.append("Nothing to change: everything in the input is already here." if not self.refused else "Nothing changed.")
        elif self.dry_run:
            out.append("Dry run: nothing was written.")
        return out
