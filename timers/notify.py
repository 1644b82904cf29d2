"""Hand a timer change made outside the bot to the worker, which applies it on Discord."""

from __future__ import annotations

from django.db import transaction


def timer_role_sync_later(timer_id: int) -> None:
    """After the current transaction commits, queue the task that grants or removes the role."""
    from django_q.tasks import async_task

    transaction.on_commit(lambda: async_task("bots.tasks.timer_role_apply", timer_id, task_name=f"timer-role-{timer_id}"))
