"""Cookie toplists at 1M ledger rows: a page costs O(page), not O(ledger).

    DATABASE_URL=postgres://postgres@127.0.0.1:5432/<scratch> .venv/bin/python bench/toplists.py [--ledger 1000000]
    GUILDHALL_DATA_DIR=$(mktemp -d) .venv/bin/python bench/toplists.py            # SQLite

Runs on a scratch database (migrated here, emptied of cookies first): one guild whose
``--ledger`` gives over the last 30 days go to ``--members`` members (10 of them have
left), written straight to the ledger; ``cookie_toplists_rebuild`` then builds the days and
windows from it. Prints, per period and page, the median time of the page the product
serves (window index range) beside the same page computed from the ledger (a GROUP BY over
the window's rows), the rebuild's time, and the median cost of one give with the toplists
kept (the extra upserts).
"""

from __future__ import annotations

import argparse
import statistics
import time
from datetime import UTC, datetime, timedelta

import _setup  # noqa: F401  (Django set-up)
from _setup import machine, print_table
from django.core.management import call_command
from django.db import connection
from django.db.models import Sum

from commands.models import CookieBalance, CookieDay, CookieLedger, CookieWindow, CookieWindowClock
from commands.selectors import cookie_leaderboard
from commands.services import cookie_give, cookie_toplists_rebuild, guild_settings_update
from guilds.models import Member

GUILD = 7


def fill(ledger: int, members: int) -> None:
    for model in (CookieLedger, CookieBalance, CookieDay, CookieWindow, CookieWindowClock):
        model.objects.all().delete()
    Member.objects.filter(guild_id=GUILD).delete()
    now = datetime.now(UTC)
    span = timedelta(days=30).total_seconds()
    batch: list[CookieLedger] = []
    for i in range(ledger):
        receiver = (i * 7919) % members + 1
        batch.append(
            CookieLedger(
                guild_id=GUILD,
                giver_id=members + 1 + i % 1000,
                receiver_id=receiver,
                delta=1,
                reason="give",
                created_at=now - timedelta(seconds=span * ((i * 104729) % ledger) / ledger),
            )
        )
        if len(batch) == 10000:
            CookieLedger.objects.bulk_create(batch)
            batch.clear()
    CookieLedger.objects.bulk_create(batch)
    sums = CookieLedger.objects.filter(guild_id=GUILD).values("receiver_id").annotate(s=Sum("delta")).order_by()
    CookieBalance.objects.bulk_create(
        (CookieBalance(guild_id=GUILD, member_id=r["receiver_id"], balance=r["s"]) for r in sums), batch_size=10000
    )
    left = datetime.now(UTC)
    Member.objects.bulk_create(Member(guild_id=GUILD, user_id=m, username=f"gone{m}", left_at=left) for m in range(1, 11))
    with connection.cursor() as cursor:
        cursor.execute("ANALYZE")


def timed(run, repeat: int = 15) -> float:
    """Median milliseconds of ``run()``."""
    samples = []
    for _ in range(repeat):
        started = time.perf_counter()
        run()
        samples.append((time.perf_counter() - started) * 1000)
    return statistics.median(samples)


def from_ledger(period: str, page: int) -> list:
    """The same page computed from the ledger: what the product would cost without the windows."""
    days = {"7d": 7, "30d": 30}[period]
    since = datetime.now(UTC) - timedelta(days=days)
    rows = (
        CookieLedger.objects.filter(guild_id=GUILD, created_at__gte=since, reason__in=["give", "take", "thanks"])
        .exclude(receiver_id__in=range(1, 11))
        .values("receiver_id")
        .annotate(s=Sum("delta"))
        .order_by("-s", "receiver_id")
    )
    return list(rows[(page - 1) * 10 : page * 10])


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--ledger", type=int, default=1_000_000)
    parser.add_argument("--members", type=int, default=50_000)
    args = parser.parse_args()
    call_command("migrate", verbosity=0)
    started = time.perf_counter()
    fill(args.ledger, args.members)
    print(f"filled {args.ledger:,} ledger rows for {args.members:,} members in {time.perf_counter() - started:.0f} s")
    started = time.perf_counter()
    for _ in cookie_toplists_rebuild(guild_ids=[GUILD]):
        pass
    rebuild_s = time.perf_counter() - started
    windows = CookieWindow.objects.filter(guild_id=GUILD).count()
    rows = []
    for period in ("all", "7d", "30d"):
        for page in (1, 100, 1000):
            served = timed(lambda page=page, period=period: cookie_leaderboard(guild_id=GUILD, page=page, period=period))
            naive = (
                "—" if period == "all" else f"{timed(lambda page=page, period=period: from_ledger(period, page), repeat=3):.1f}"
            )
            rows.append([period, page, f"{served:.2f}", naive])
    print_table(
        f"Toplist page (10 rows), median ms — {args.ledger:,} ledger rows, {windows:,} window rows; {machine()}",
        ["period", "page", "served (window index)", "from the ledger (GROUP BY)"],
        rows,
    )
    guild_settings_update(guild_id=GUILD, cookie_pair_cooldown_seconds=0, cookie_daily_cap=None)
    givers = iter(range(10**9, 10**9 + 1000))
    give_ms = timed(lambda: cookie_give(guild_id=GUILD, giver_id=next(givers), receiver_id=42), repeat=200)
    print(f"\nrebuild from the ledger: {rebuild_s:.1f} s; one give with the toplists kept: {give_ms:.2f} ms median")


if __name__ == "__main__":
    main()
