"""API routes for bulk timer changes: /api/v1/guilds/{guild_id}/timers/bulk-jobs…

The same jobs as ``/timer bulk-add`` / ``bulk-clear`` and the dashboard's Bulk jobs page,
with its permissions: a bulk add gives timers (``timers.add_timedrole``), a bulk clear ends
them and a cancel changes a job (``timers.change_timedrole``), reads need
``timers.view_timedrole``. ``bulk_job_create`` queues the worker's run after the commit,
exactly as for a job started on the dashboard, so an answer of 201 means the worker has it.
"""

from __future__ import annotations

import logging
from datetime import datetime, timedelta

from django.http import HttpRequest
from ninja import Path, Router, Schema, Status
from ninja.errors import HttpError
from pydantic import Field

from config.api import refusals, requires
from config.api_fields import Cursor, DiscordId, Limit, RequestBody, Snowflake
from config.database import lag_tolerant_alias
from config.pagination import paginate
from guilds.api_names import attach_names, name_of
from timers.api import DurationText
from timers.durations import format_duration, parse_duration
from timers.models import BulkJob, BulkKind
from timers.services.bulk import bulk_job_cancel, bulk_job_create

logger = logging.getLogger(__name__)
router = Router(tags=["bulk timer jobs"])

JOB_ORDER = ("-pk",)  # newest first: the index bulk_job_guild_recent
JOB_NAMES = (("guild", "guild_id"), ("role", "role_id"), ("role", "holders_of_role_id"), ("member", "requested_by_id"))
JobId = Path(..., ge=1, le=2**63 - 1)
# The paths /add and /clear are registered before /{job_id}: Django tries them in that order.
BASE = "/guilds/{guild_id}/timers/bulk-jobs"


class BulkJobOut(Schema):
    id: int
    guild_id: Snowflake
    kind: str = Field(description="`add` (a bulk add) or `clear` (a bulk clear).")
    role_id: Snowflake
    holders_of_role_id: Snowflake | None = Field(description="A bulk add gives the role to the holders of this role.")
    seconds: int | None = Field(description="The duration a bulk add gives, in seconds.")
    duration: str | None = Field(description="The same, in the chat's form (`30d`).")
    requested_by_id: Snowflake | None
    state: str = Field(description="`pending`, `running`, `cancelled`, `done` or `failed`.")
    total: int | None = Field(description="Members the job goes through; null until the worker has counted them.")
    done: int = Field(description="Members changed.")
    skipped: int = Field(description="Members who needed nothing (a bulk add skips live timers).")
    failed: int = Field(description="Members Discord refused.")
    processed: int = Field(description="done + skipped + failed.")
    progress: str = Field(description='As the dashboard shows it: "320 of 1,200 (3 failed)".')
    detail: str = Field(description="The last failure, or who cancelled it.")
    cancel_requested: bool
    created_at: datetime
    updated_at: datetime
    finished_at: datetime | None
    guild_name: str | None = Field(description='The server ("My Server"); null if the bot has not seen it.')
    role_name: str | None = Field(description='The role ("@Booster").')
    holders_of_role_name: str | None
    requested_by_name: str | None = Field(description='Who started it in chat ("Alice (@alice)"); null from the dashboard.')

    @staticmethod
    def resolve_duration(obj: BulkJob) -> str | None:
        return format_duration(timedelta(seconds=obj.seconds)) if obj.seconds else None

    @staticmethod
    def resolve_done(obj: BulkJob) -> int:
        return obj.done_count

    @staticmethod
    def resolve_skipped(obj: BulkJob) -> int:
        return obj.skipped_count

    @staticmethod
    def resolve_failed(obj: BulkJob) -> int:
        return obj.failed_count

    @staticmethod
    def resolve_processed(obj: BulkJob) -> int:
        return obj.done_count + obj.skipped_count + obj.failed_count

    @staticmethod
    def resolve_progress(obj: BulkJob) -> str:
        if obj.total is None:
            return "counting members…" if obj.state == "running" else "not started"
        processed = obj.done_count + obj.skipped_count + obj.failed_count
        counts = [f"{n:,} {word}" for n, word in ((obj.skipped_count, "skipped"), (obj.failed_count, "failed")) if n]
        return f"{processed:,} of {obj.total:,}" + (f" ({', '.join(counts)})" if counts else "")

    @staticmethod
    def resolve_guild_name(obj: BulkJob) -> str | None:
        return name_of(obj, "guild", "guild_id", spec=JOB_NAMES)

    @staticmethod
    def resolve_role_name(obj: BulkJob) -> str | None:
        return name_of(obj, "role", "role_id", spec=JOB_NAMES)

    @staticmethod
    def resolve_holders_of_role_name(obj: BulkJob) -> str | None:
        return name_of(obj, "role", "holders_of_role_id", spec=JOB_NAMES)

    @staticmethod
    def resolve_requested_by_name(obj: BulkJob) -> str | None:
        return name_of(obj, "member", "requested_by_id", spec=JOB_NAMES)


class BulkJobPage(Schema):
    items: list[BulkJobOut]
    next_cursor: str | None


class BulkAddIn(RequestBody):
    role_id: DiscordId = Field(description="The role given, for `duration`.")
    duration: DurationText
    holders_of: DiscordId | None = Field(
        None, description="The members holding this role get the timer (null: who holds `role_id` now)."
    )


class BulkClearIn(RequestBody):
    role_id: DiscordId = Field(description="Every live timer of this role ends; the worker takes the role away.")


def _job_or_404(guild_id: int, job_id: int) -> BulkJob:
    job = BulkJob.objects.filter(guild_id=guild_id, pk=job_id).first()
    if job is None:
        raise HttpError(404, f"There is no bulk job #{job_id} in this server.")
    return job


def _started(request: HttpRequest, job: BulkJob) -> BulkJob:
    logger.info("bulk job %s (%s) started through the API by %s", job.pk, job.kind, getattr(request, "auth", None))
    return job


@router.get(BASE, response={200: BulkJobPage, **refusals(400)})
@requires("timers.view_timedrole")
def timers_bulk_jobs_list(request: HttpRequest, guild_id: DiscordId, cursor: str | None = Cursor, limit: int = Limit):
    """The server's bulk jobs, newest first, with their progress; a page at a time."""
    rows = BulkJob.objects.using(lag_tolerant_alias()).filter(guild_id=guild_id)
    page = paginate(rows, order=JOB_ORDER, cursor=cursor, limit=limit)
    attach_names(page.items, JOB_NAMES)
    return page


@router.post(BASE + "/add", response={201: BulkJobOut, **refusals(400)})
@requires("timers.add_timedrole")
def timers_bulk_add(request: HttpRequest, guild_id: DiscordId, body: BulkAddIn):
    """Give `role_id` for `duration` to every holder of `holders_of` (`/timer bulk-add`); members with a live timer keep it.

    One job at a time per server: 400 while another is under way.
    """
    seconds = int(parse_duration(body.duration).total_seconds())
    job = bulk_job_create(
        guild_id=guild_id,
        kind=BulkKind.ADD,
        role_id=body.role_id,
        seconds=seconds,
        holders_of_role_id=body.holders_of,
        actor_id=None,
    )
    return Status(201, _started(request, job))


@router.post(BASE + "/clear", response={201: BulkJobOut, **refusals(400)})
@requires("timers.change_timedrole")
def timers_bulk_clear(request: HttpRequest, guild_id: DiscordId, body: BulkClearIn):
    """End every live timer of `role_id` (`/timer bulk-clear`); the timers stay as history."""
    job = bulk_job_create(guild_id=guild_id, kind=BulkKind.CLEAR, role_id=body.role_id, actor_id=None)
    return Status(201, _started(request, job))


@router.get(BASE + "/{job_id}", response={200: BulkJobOut, **refusals(404)})
@requires("timers.view_timedrole")
def timers_bulk_job_get(request: HttpRequest, guild_id: DiscordId, job_id: int = JobId):
    """One bulk job: its progress (total, done, skipped, failed), its state and the last failure."""
    return _job_or_404(guild_id, job_id)


@router.post(BASE + "/{job_id}/cancel", response={200: BulkJobOut, **refusals(404)})
@requires("timers.change_timedrole")
def timers_bulk_cancel(request: HttpRequest, guild_id: DiscordId, job_id: int = JobId):
    """Cancel a job: at once when no worker holds it (`state` is `cancelled`), else after the member it is on.

    404 for a job that has ended (done, cancelled or failed).
    """
    _job_or_404(guild_id, job_id)
    job = bulk_job_cancel(guild_id=guild_id, job_id=job_id, actor_id=None)
    logger.info("bulk job %s cancelled through the API by %s", job.pk, getattr(request, "auth", None))
    return job
