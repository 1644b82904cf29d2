"""The activity log: what the bot and the admins did in a guild, and posting it to the log channel.

``log_record`` is called by the services that make a change, inside their transaction, so
that an entry exists exactly when its change committed (a rollback takes the entry with
it). It costs one INSERT and no read: the text names people and roles by mention
(``<@id>``, ``<@&id>``), which the poster and the dashboard turn into names from the
directory in one query per batch (``guilds.log_selectors.log_texts_named``).

Posting (done by the worker's timer engine, ``bots.log_poster``) claims a guild's unposted
entries under a per-guild lock and a lease, so that one poster at a time posts a guild's
entries, in order, and two posters never post one entry; an entry is marked once the
message carrying it was sent, or once it can't be (no log channel: kept for the
dashboard; the channel is gone or the bot may not post there: kept, and the channel is
not tried again until it is set again or ``POST_RETRY`` has passed).
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass
from datetime import datetime, timedelta

from django.db import transaction
from django.db.models import Q
from django.utils import timezone

from config.database import lock_for_transaction, retry_transient
from config.web_actor import web_actor
from guilds.models import LogEntry, LogSettings, PostOutcome

MAX_TEXT = 500
POST_LEASE = timedelta(seconds=60)  # far longer than a paced batch takes; a dead poster's batch is free after it
POST_RETRY = timedelta(hours=1)  # a channel the bot could not post in is tried again after this
CLAIM_LIMIT = 1000  # a burst of expiries folds into few lines when it arrives in one batch


@dataclass(frozen=True)
class LogLine:
    """One entry to record (for ``log_record_many``)."""

    guild_id: int
    kind: str
    text: str
    actor_id: int | None = None
    member_id: int | None = None
    role_id: int | None = None
    failed: bool = False

    def entry(self) -> LogEntry:
        return LogEntry(
            guild_id=self.guild_id,
            kind=self.kind[:32],
            text=self.text[:MAX_TEXT],
            actor_id=self.actor_id,
            member_id=self.member_id,
            role_id=self.role_id,
            failed=self.failed,
        )


def by(actor_id: int | None) -> str:
    """`` by <@actor>`` for a change a member asked for, `` by alice on the dashboard`` for one made
    on the web or through the API; empty for the bot's own."""
    if actor_id:
        return f" by <@{actor_id}>"
    # A Django username holds only letters, digits and @.+-_ : in backticks it shows as written.
    user, _, where = web_actor().partition(" ")
    return f" by `{user}` {where}" if user else ""


def log_record(
    *,
    guild_id: int,
    kind: str,
    text: str,
    actor_id: int | None = None,
    member_id: int | None = None,
    role_id: int | None = None,
    failed: bool = False,
) -> LogEntry:
    """Record one entry; call it inside the transaction of the change it describes."""
    line = LogLine(guild_id, kind, text, actor_id, member_id, role_id, failed)
    entry = line.entry()
    entry.save(force_insert=True)
    return entry


def log_record_many(lines: Iterable[LogLine]) -> int:
    """Record many entries in one INSERT (the sweep's batch of expiries); inside the caller's transaction."""
    entries = [line.entry() for line in lines]
    LogEntry.objects.bulk_create(entries)
    return len(entries)


@retry_transient()
def log_channel_set(*, guild_id: int, channel_id: int | None, actor_id: int | None) -> LogSettings:
    """Post the guild's log to ``channel_id`` (None: stop posting; entries are still kept)."""
    with transaction.atomic():
        settings, _ = LogSettings.objects.select_for_update().get_or_create(guild_id=guild_id)
        settings.channel_id = channel_id
        settings.set_by_id = actor_id
        settings.post_error, settings.post_error_at = "", None  # a channel set again is tried again
        settings.save()
        where = f"<#{channel_id}>" if channel_id else "off"
        log_record(
            guild_id=guild_id, kind="settings.log_channel", text=f"Log channel set to {where}{by(actor_id)}", actor_id=actor_id
        )
    return settings


@dataclass(frozen=True)
class LogClaim:
    """A guild's entries claimed for posting to ``channel_id`` (none when another poster has the guild)."""

    guild_id: int
    channel_id: int | None
    entries: list[LogEntry]


def _free(now: datetime) -> Q:
    return Q(post_lease_until__isnull=True) | Q(post_lease_until__lte=now)


def _give_up(ids: list[int], outcome: str, now: datetime) -> int:
    return LogEntry.objects.filter(pk__in=ids, posted_at__isnull=True).update(
        posted_at=now, post_outcome=outcome, post_lease_until=None
    )


@retry_transient()
def log_claim(*, guild_id: int, now: datetime | None = None, limit: int = CLAIM_LIMIT) -> LogClaim:
    """Claim the guild's oldest unposted entries for posting, unless another poster is posting them.

    Entries of a guild without a log channel, or whose channel failed within
    ``POST_RETRY``, are marked kept at once and nothing is returned for them.
    """
    now = now or timezone.now()
    with transaction.atomic():
        # One poster per guild at a time: the channel's messages stay in order and under its limit.
        lock_for_transaction("log-post", guild_id)
        pending = LogEntry.objects.filter(guild_id=guild_id, posted_at__isnull=True)
        if pending.filter(post_lease_until__gt=now).exists():
            return LogClaim(guild_id, None, [])
        entries = list(pending.order_by("pk").select_for_update(skip_locked=True)[:limit])
        if not entries:
            return LogClaim(guild_id, None, [])
        ids = [e.pk for e in entries]
        settings = LogSettings.objects.filter(guild_id=guild_id).first()
        if settings is None or settings.channel_id is None:
            _give_up(ids, PostOutcome.NO_CHANNEL, now)
            return LogClaim(guild_id, None, [])
        if settings.post_error and settings.post_error_at and now - settings.post_error_at < POST_RETRY:
            _give_up(ids, settings.post_error, now)
            return LogClaim(guild_id, None, [])
        LogEntry.objects.filter(pk__in=ids).update(post_lease_until=now + POST_LEASE)
    return LogClaim(guild_id, settings.channel_id, entries)


@retry_transient()
def log_mark_posted(*, entry_ids: list[int], now: datetime | None = None) -> int:
    """The message carrying these entries was sent."""
    now = now or timezone.now()
    with transaction.atomic():
        marked = _give_up(entry_ids, PostOutcome.POSTED, now)
        # A channel that takes posts again is no longer marked as failing.
        first = LogEntry.objects.filter(pk__in=entry_ids[:1]).values_list("guild_id", flat=True).first()
        if first is not None:
            LogSettings.objects.filter(guild_id=first).exclude(post_error="").update(post_error="", post_error_at=None)
    return marked


@retry_transient()
def log_mark_unpostable(
    *, guild_id: int, channel_id: int, entry_ids: list[int], outcome: str, now: datetime | None = None
) -> int:
    """The bot may not post in the channel, or it is gone: keep the entries, and remember the failure."""
    if outcome not in (PostOutcome.FORBIDDEN, PostOutcome.GONE):
        raise ValueError(f"not a posting failure: {outcome!r}")
    now = now or timezone.now()
    with transaction.atomic():
        marked = _give_up(entry_ids, outcome, now)
        LogSettings.objects.filter(guild_id=guild_id, channel_id=channel_id).update(post_error=outcome, post_error_at=now)
    return marked


@retry_transient()
def log_release(*, entry_ids: list[int]) -> int:
    """Give claimed entries back unposted (stopping, or a failure worth retrying at the next pass)."""
    with transaction.atomic():
        return LogEntry.objects.filter(pk__in=entry_ids, posted_at__isnull=True).update(post_lease_until=None)


def log_entries_prune(*, cutoff: datetime, batch: int = 500) -> int:
    """Delete entries older than ``cutoff`` in short transactions, oldest first; return how many."""
    deleted = 0
    while True:
        with transaction.atomic():
            ids = list(LogEntry.objects.filter(created_at__lt=cutoff).order_by("pk").values_list("pk", flat=True)[:batch])
            if not ids:
                return deleted
            deleted += LogEntry.objects.filter(pk__in=ids).delete()[0]
