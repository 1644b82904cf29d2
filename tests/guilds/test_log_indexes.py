"""The activity log's queries use their indexes (the poster's probe, the events page), and claims made
at the same moment by two posters on PostgreSQL never share an entry."""

from __future__ import annotations

import threading

import pytest
from django.db import connection, connections
from django.utils import timezone

from guilds.log_selectors import log_guilds_pending
from guilds.models import LogEntry, PostOutcome
from guilds.services.log import LogLine, log_channel_set, log_claim, log_mark_posted, log_record_many

G = 111_111_111_111_111_111


def _fill(count: int, unposted: int) -> None:
    now = timezone.now()
    rows = [
        LogEntry(guild_id=G + i % 50, kind="timer.set" if i % 7 else "cookie.set", text="x", failed=i % 100 == 0, posted_at=now)
        for i in range(count)
    ]
    rows += [LogEntry(guild_id=G + i, kind="timer.set", text="y") for i in range(unposted)]
    LogEntry.objects.bulk_create(rows, batch_size=2000)
    LogEntry.objects.filter(posted_at__isnull=False).update(post_outcome=PostOutcome.POSTED)
    with connection.cursor() as cursor:
        cursor.execute("ANALYZE" if connection.vendor == "sqlite" else f"ANALYZE {LogEntry._meta.db_table}")


@pytest.mark.django_db
def test_the_posters_probe_and_the_events_page_read_their_indexes():
    _fill(20_000, unposted=3)
    pending = LogEntry.objects.filter(posted_at__isnull=True).order_by("guild_id").values_list("guild_id", flat=True)
    plans = {
        "log_unposted": pending.distinct()[:50].explain(),
        "log_guild_recent": LogEntry.objects.filter(guild_id=G + 3).order_by("-pk")[:50].explain(),
        "log_guild_kind": LogEntry.objects.filter(guild_id=G + 3, kind="cookie.set").order_by("-pk")[:50].explain(),
        "log_guild_failed": LogEntry.objects.filter(guild_id=G, failed=True).order_by("-pk")[:50].explain(),
    }
    for index, plan in plans.items():
        assert index in plan, f"{index} not used:\n{plan}"
    assert log_guilds_pending(now=timezone.now()) == [G, G + 1, G + 2]


@pytest.mark.postgres
@pytest.mark.django_db
def test_the_probe_never_scans_the_table_on_postgres():
    _fill(50_000, unposted=2)
    plan = LogEntry.objects.filter(posted_at__isnull=True).values_list("guild_id", flat=True).distinct()[:50].explain()
    assert "log_unposted" in plan and "Seq Scan" not in plan, plan


@pytest.mark.postgres
@pytest.mark.django_db(transaction=True)
def test_two_posters_claiming_at_once_never_share_an_entry():
    log_channel_set(guild_id=G, channel_id=555, actor_id=1)
    log_record_many(LogLine(G, "timer.set", f"entry {i}") for i in range(600))
    everything = set(LogEntry.objects.values_list("pk", flat=True))
    got: dict[str, list[int]] = {}
    start = threading.Barrier(2)

    def poster(name: str) -> None:
        mine: list[int] = []
        try:
            start.wait()
            while True:
                claim = log_claim(guild_id=G, limit=25)
                if claim.entries:
                    ids = [e.pk for e in claim.entries]
                    mine += ids
                    log_mark_posted(entry_ids=ids)
                elif not LogEntry.objects.filter(guild_id=G, posted_at__isnull=True).exists():
                    return
        finally:
            got[name] = mine
            connections.close_all()

    threads = [threading.Thread(target=poster, args=(name,)) for name in ("a", "b")]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(60)
    assert not set(got["a"]) & set(got["b"])
    assert sorted(got["a"] + got["b"]) == sorted(everything)
    assert got["a"] and got["b"], "both posters should have had a turn"
