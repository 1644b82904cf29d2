"""The one error a move raises for a refusal; its message is what the operator reads."""

from __future__ import annotations

from config.errors import ApplicationError


class MoveRefused(ApplicationError):
    """The move was refused before anything changed (or, for a failed check, nothing more)."""
