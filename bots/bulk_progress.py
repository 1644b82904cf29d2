"""A bulk job's progress message: its text ("320 of 1,200"), its Cancel button and the throttled edits."""

from __future__ import annotations

import logging
import time
from datetime import timedelta
from typing import Any

import discord
from discord.http import handle_message_parameters
from django.conf import settings

from bots.rest import DiscordRest
from timers.durations import format_duration
from timers.models import BulkJob, BulkKind, BulkState

logger = logging.getLogger(__name__)
NO_PINGS = discord.AllowedMentions.none()
CANCEL_BUTTON = "guildhall:bulk-cancel:"  # + the job's id: the progress message's button


def progress_text(job: BulkJob, *, final: bool = False) -> str:
    """The progress line: "Bulk add #7 … 320 of 1,200 (300 given, 20 skipped)"."""
    role = f"<@&{job.role_id}>"
    if job.kind == BulkKind.ADD:
        holders = (
            "its holders" if job.holders_of_role_id in (None, job.role_id) else f"the holders of <@&{job.holders_of_role_id}>"
        )
        what = f"Bulk add #{job.pk}: {role} for {format_duration_seconds(job.seconds)} to {holders}"
        applied = "given"
    else:
        what = f"Bulk clear #{job.pk}: every timer of {role}"
        applied = "cleared"
    processed = job.done_count + job.skipped_count + job.failed_count
    total = f"{job.total:,}" if job.total is not None else "…"
    counts = f"{job.done_count:,} {applied}, {job.skipped_count:,} skipped" + (
        f", {job.failed_count:,} failed" if job.failed_count else ""
    )
    if job.total is None and not final:
        return f"{what} — counting members…"
    line = f"{what} — **{processed:,} of {total}** ({counts})"
    if job.state == BulkState.DONE:
        return f"✅ {line}. Done."
    if job.state == BulkState.CANCELLED:
        who = f" {job.detail}" if job.detail else ""  # "by @admin", "on the dashboard"
        return f"⏹️ {line}. Cancelled{who}."
    if job.state == BulkState.FAILED:
        return f"⚠️ {line}. Stopped: {job.detail}."
    return f"⏳ {line}"


def format_duration_seconds(seconds: int | None) -> str:
    return format_duration(timedelta(seconds=seconds or 0))


def cancel_button(job: BulkJob) -> list[dict[str, Any]]:
    """The progress message's Cancel button while the job can still be cancelled (the bot answers its clicks)."""
    if job.state not in (BulkState.PENDING, BulkState.RUNNING) or job.cancel_requested:
        return []
    button = {"type": 2, "style": 4, "label": "Cancel", "custom_id": f"{CANCEL_BUTTON}{job.pk}"}
    return [{"type": 1, "components": [button]}]


class Progress:
    """The one progress message, edited at most every BULK_EDIT_SECONDS (and always at the end)."""

    def __init__(self, rest: DiscordRest) -> None:
        self.rest = rest
        self.last_edit = 0.0
        self.broken = False
        self.last_text = ""

    async def show(self, job: BulkJob, *, force: bool = False) -> None:
        if self.broken or not job.channel_id or not job.message_id:
            return
        if not force and time.monotonic() - self.last_edit < settings.BULK_EDIT_SECONDS:
            return
        text = progress_text(job, final=force)
        if text == self.last_text:
            return
        self.last_edit = time.monotonic()
        try:
            with handle_message_parameters(content=text, allowed_mentions=NO_PINGS) as params:
                params.payload["components"] = cancel_button(job)  # type: ignore[index]
                await self.rest.http.edit_message(job.channel_id, job.message_id, params=params)
            self.last_text = text
        except discord.HTTPException as exc:  # deleted, or the channel is gone: the job goes on without it
            logger.info("bulk job %s: progress message can't be edited (%s); going on without it", job.pk, exc.status)
            self.broken = True
