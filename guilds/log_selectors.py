"""Reads for the activity log (the directory's own reads are in guilds/selectors.py).

Entries are stored with mentions (``<@id>``, ``<@&id>``, ``<#id>``) so that recording one
costs no read; ``log_texts_named`` turns them into "Alice (@alice)", "@Booster",
"#general" from the directory, one query for a whole page or batch, and leaves a
mention as it is where the directory does not know the name (Discord renders it).
"""

from __future__ import annotations

import re
from collections.abc import Callable, Iterable
from datetime import datetime

from django.db.models import Q, QuerySet

from guilds.models import LogEntry, LogSettings
from guilds.selectors import directory_names

USER = re.compile(r"<@!?([0-9]{1,20})>")
ROLE = re.compile(r"<@&([0-9]{1,20})>")
CHANNEL = re.compile(r"<#([0-9]{1,20})>")
MENTION = re.compile(r"<(?:@!?|@&|#)[0-9]{1,20}>")


def log_settings_get(*, guild_id: int) -> LogSettings | None:
    return LogSettings.objects.filter(guild_id=guild_id).first()


def log_guilds_pending(*, now: datetime, limit: int = 50) -> list[int]:
    """Guilds with entries waiting to be posted and not being posted (a probe of ``log_unposted``)."""
    free = Q(post_lease_until__isnull=True) | Q(post_lease_until__lte=now)
    rows = LogEntry.objects.filter(free, posted_at__isnull=True).order_by("guild_id").values_list("guild_id", flat=True)
    return list(rows.distinct()[:limit])


def log_entries_recent(*, guild_id: int) -> QuerySet[LogEntry]:
    """A guild's entries, newest first (``log_guild_recent``)."""
    return LogEntry.objects.filter(guild_id=guild_id).order_by("-pk")


def _ids(pattern: re.Pattern[str], texts: Iterable[str]) -> set[int]:
    return {int(m) for text in texts for m in pattern.findall(text) if int(m) < 2**63}


def log_names(entries: list[LogEntry]) -> dict[str, str]:
    """``{mention: name}`` for the mentions in ``entries`` that the directory can name (one query)."""
    texts = [e.text for e in entries]
    found = directory_names(role_ids=_ids(ROLE, texts), channel_ids=_ids(CHANNEL, texts), members=_members(entries))
    # "left" is the dashboard's mark on a member's label; in a sentence of the log it reads wrongly.
    names = {f"<@{user_id}>": label.removesuffix(", left") for (_, user_id), label in found.members.items() if label}
    names.update((f"<@&{role_id}>", label) for role_id, label in found.roles.items())
    names.update((f"<#{channel_id}>", label) for channel_id, label in found.channels.items())
    return names


def _members(entries: list[LogEntry]) -> list[tuple[int, int]]:
    """(guild, user) pairs: each mention is looked up in its own entry's guild."""
    pairs = set()
    for e in entries:
        for user_id in _ids(USER, [e.text]) | {i for i in (e.actor_id, e.member_id) if i}:
            pairs.add((e.guild_id, user_id))
    return sorted(pairs)


def named(text: str, names: dict[str, str], escape: Callable[[str], str] = lambda s: s) -> str:
    """``text`` with each mention the directory knows replaced by its name (``escape``d)."""

    def swap(match: re.Match[str]) -> str:
        key = match.group(0).replace("<@!", "<@")
        found = names.get(key)
        return escape(found) if found is not None else match.group(0)

    return MENTION.sub(swap, text)  # one pass: a name that looks like a mention is left alone


def log_texts_named(entries: list[LogEntry]) -> dict[int, str]:
    """Each entry's text with names instead of mentions, by entry id."""
    names = log_names(entries)
    return {e.pk: named(e.text, names) for e in entries}


def log_guild_names(guild_ids: Iterable[int]) -> dict[int, str]:
    """Guild names for the events page (one query)."""
    return directory_names(guild_ids=guild_ids).guilds
