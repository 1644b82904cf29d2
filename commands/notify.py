"""Hand a cookie change made outside the bot to the worker, which makes members' cookie roles match."""

from __future__ import annotations

from django.db import transaction

ROLES_PER_TASK = 500  # one task per slice: a retry repeats a slice, not a whole guild


def cookie_roles_sync_later(*, guild_id: int, member_ids: list[int]) -> None:
    """After the current transaction commits, queue the task that grants or takes the members' cookie roles."""
    from django_q.tasks import async_task

    def queue() -> None:
        for start in range(0, len(member_ids), ROLES_PER_TASK):
            chunk = member_ids[start : start + ROLES_PER_TASK]
            async_task("bots.cookie_roles.cookie_roles_apply", guild_id, chunk, task_name=f"cookie-roles-{guild_id}-{chunk[0]}")

    transaction.on_commit(queue)
