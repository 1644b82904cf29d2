"""Hand a cookie change made outside the bot to the worker, which makes members' cookie roles match."""

from __future__ import annotations

import logging

from django.core.cache import cache
from django.db import transaction

logger = logging.getLogger(__name__)
ROLES_PER_TASK = 500  # one task per slice: a retry repeats a slice, not a whole guild


def cookie_roles_sync_later(*, guild_id: int, member_ids: list[int]) -> None:
    """After the current transaction commits, queue the task that grants or takes the members' cookie roles."""
    from django_q.tasks import async_task

    def queue() -> None:
        for start in range(0, len(member_ids), ROLES_PER_TASK):
            chunk = member_ids[start : start + ROLES_PER_TASK]
            async_task("bots.cookie_roles.cookie_roles_apply", guild_id, chunk, task_name=f"cookie-roles-{guild_id}-{chunk[0]}")

    transaction.on_commit(queue)


def _generation_key(guild_id: int) -> str:
    return f"cookie-roles-resync:{guild_id}:generation"


def _previous_key(guild_id: int) -> str:
    return f"cookie-roles-resync:{guild_id}:previous"


def cookie_roles_resync_generation(*, guild_id: int) -> int | None:
    """The newest guild-wide sync queued for the guild (None: the cache lost it, so none is superseded)."""
    try:
        found = cache.get(_generation_key(guild_id))
    except Exception:  # the cache is down: let the running sync go on
        logger.warning("cache unavailable: cookie roles sync of %s not checked for a newer one", guild_id, exc_info=True)
        return None
    return int(found) if found is not None else None


def cookie_roles_resync_done(*, guild_id: int, generation: int) -> None:
    """A finished sync forgets the roles it took, unless a newer one was queued meanwhile (it took them too)."""
    if cookie_roles_resync_generation(guild_id=guild_id) == generation:
        try:
            cache.delete(_previous_key(guild_id))
        except Exception:
            logger.warning("cache unavailable: the roles taken in %s are taken again by the next sync", guild_id)


def cookie_roles_resync_later(*, guild_id: int, previous: list[tuple[int, int]]) -> None:
    """After the commit, queue the one task that walks every member who qualifies and makes their cookie roles match.

    ``previous``: ``(threshold, role id)`` pairs no longer given as they were (removed, or
    moved), taken from the members whose count reached them. A newer change supersedes a
    running sync (the per-guild generation); the pairs of a superseded one are carried over.
    """
    from django_q.tasks import async_task

    def queue() -> None:
        key = _generation_key(guild_id)
        try:
            cache.add(key, 0, timeout=None)
            generation = cache.incr(key)
            pending = {(int(t), int(r)) for t, r in cache.get(_previous_key(guild_id)) or []} | set(previous)
            cache.set(_previous_key(guild_id), sorted(pending), timeout=None)
        except Exception:  # the cache is down: the sync still runs (it cannot be superseded or carry pairs)
            logger.warning("cache unavailable: cookie roles sync of %s queued without a generation", guild_id, exc_info=True)
            generation, pending = 0, set(previous)
        async_task(
            "bots.cookie_roles.cookie_roles_resync",
            guild_id,
            generation,
            [[t, r] for t, r in sorted(pending)],
            None,
            task_name=f"cookie-roles-resync-{guild_id}-{generation}",
        )

    transaction.on_commit(queue)
