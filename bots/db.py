"""The bot's one door into the services: run a sync service off the event loop."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any, TypeVar

from asgiref.sync import sync_to_async
from django.db import close_old_connections

T = TypeVar("T")


def _fresh(func: Callable[..., T], kwargs: dict[str, Any]) -> T:
    # A long-lived process has no request cycle: drop broken or expired connections here.
    close_old_connections()
    return func(**kwargs)


async def call(func: Callable[..., T], /, **kwargs: Any) -> T:
    """Run ``func(**kwargs)`` in Django's sync thread (no ORM in async code)."""
    return await sync_to_async(_fresh, thread_sensitive=True)(func, kwargs)
