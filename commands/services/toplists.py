"""The rolling toplists (last 7 and 30 days): per-day sums and window totals kept beside the ledger.

``cookie_toplists_record`` runs in the transaction of every ledger row that counts (gives,
takes, thanks): one upsert of the member's day and one of their two window rows, so a
toplist page is an index range of ``CookieWindow`` (``cookie_window_top``), never a scan
of the ledger. ``cookie_windows_roll`` (daily, from the worker) takes each day that fell
out of a window off the totals, one day per transaction, claimed on the window's clock row
so that two workers never take a day off twice. ``cookie_toplists_rebuild`` recomputes a
guild's days and windows from the ledger.
"""

from __future__ import annotations

from collections.abc import Iterator
from datetime import UTC, date, datetime, timedelta

from django.db import connection, transaction
from django.db.models import Sum
from django.db.models.functions import TruncDate

from commands.models import (
    PERIOD_DAYS,
    TOPLIST_REASONS,
    CookieDay,
    CookieLedger,
    CookiePeriod,
    CookieWindow,
    CookieWindowClock,
)

KEPT_DAYS = max(PERIOD_DAYS.values())  # CookieDay rows older than the longest window are pruned


def toplist_day(at: datetime) -> date:
    """The UTC day a change at ``at`` counts on."""
    return at.astimezone(UTC).date()


def window_first_day(period: str, today: date) -> date:
    """The oldest day a window of ``period`` holds on ``today`` (today and the days before it)."""
    return today - timedelta(days=PERIOD_DAYS[CookiePeriod(period)] - 1)


def _table(model) -> str:
    return connection.ops.quote_name(model._meta.db_table)


def cookie_toplists_record(*, guild_id: int, member_id: int, delta: int, at: datetime) -> None:
    """Add ``delta`` to the member's day and both windows; call inside the ledger row's transaction."""
    if not delta:
        return
    day_table, window_table = _table(CookieDay), _table(CookieWindow)
    with connection.cursor() as cursor:
        # INSERT … ON CONFLICT DO UPDATE: one atomic statement on SQLite and PostgreSQL alike.
        cursor.execute(
            f"INSERT INTO {day_table} (guild_id, member_id, day, total) VALUES (%s, %s, %s, %s) "
            f"ON CONFLICT (guild_id, member_id, day) DO UPDATE SET total = {day_table}.total + excluded.total",
            [guild_id, member_id, toplist_day(at), delta],
        )
        cursor.execute(
            f"INSERT INTO {window_table} (guild_id, member_id, period, total) VALUES (%s, %s, %s, %s), (%s, %s, %s, %s) "
            f"ON CONFLICT (guild_id, period, member_id) DO UPDATE SET total = {window_table}.total + excluded.total",
            [guild_id, member_id, CookiePeriod.WEEK, delta, guild_id, member_id, CookiePeriod.MONTH, delta],
        )


def _roll_one_day(period: str, day: date) -> bool:
    """Take ``day`` off the ``period`` windows if the clock still starts there; False when another run did."""
    with transaction.atomic():
        if not CookieWindowClock.objects.filter(period=period, first_day=day).update(first_day=day + timedelta(days=1)):
            return False
        day_table, window_table = _table(CookieDay), _table(CookieWindow)
        with connection.cursor() as cursor:
            # Driven from the day's rows (cookie_day_by_day), each window row found by its unique index.
            cursor.execute(
                f"UPDATE {window_table} SET total = {window_table}.total - d.total FROM {day_table} d "
                f"WHERE d.day = %s AND {window_table}.period = %s AND {window_table}.guild_id = d.guild_id "
                f"AND {window_table}.member_id = d.member_id",
                [day, period],
            )
    return True


def _windows_prune(period: str, first_day: date) -> None:
    """Drop window rows at zero with no day left in the window (a zero with days in it may move again)."""
    day_table, window_table = _table(CookieDay), _table(CookieWindow)
    with connection.cursor() as cursor:
        cursor.execute(
            f"DELETE FROM {window_table} WHERE period = %s AND total = 0 AND NOT EXISTS (SELECT 1 FROM {day_table} d "
            f"WHERE d.guild_id = {window_table}.guild_id AND d.member_id = {window_table}.member_id AND d.day >= %s)",
            [period, first_day],
        )


def cookie_windows_roll(*, today: date | None = None) -> dict[str, int]:
    """Take the days that fell out of each window off its totals; prune days older than every window.

    Returns how many days each window lost. A window with no clock yet (first run) is rebuilt
    from the kept days instead.
    """
    today = today or toplist_day(datetime.now(UTC))
    rolled: dict[str, int] = {}
    for period in PERIOD_DAYS:
        target = window_first_day(period, today)
        clock = CookieWindowClock.objects.filter(period=period).first()
        if clock is None:
            _windows_from_days(period=period, first_day=target)
            CookieWindowClock.objects.get_or_create(period=period, defaults={"first_day": target})
            rolled[period] = 0
            continue
        count = 0
        day = clock.first_day
        while day < target:
            count += _roll_one_day(period, day)
            day += timedelta(days=1)
        rolled[period] = count
        _windows_prune(period, target)
    CookieDay.objects.filter(day__lt=today - timedelta(days=KEPT_DAYS)).delete()
    return rolled


def _windows_from_days(*, period: str, first_day: date, guild_id: int | None = None) -> None:
    """Recompute ``period``'s windows (one guild's, or all) from the kept days from ``first_day`` on."""
    with transaction.atomic():
        windows = CookieWindow.objects.filter(period=period)
        days = CookieDay.objects.filter(day__gte=first_day)
        if guild_id is not None:
            windows, days = windows.filter(guild_id=guild_id), days.filter(guild_id=guild_id)
        windows.delete()
        sums = days.values("guild_id", "member_id").annotate(sum=Sum("total")).exclude(sum=0).order_by()
        CookieWindow.objects.bulk_create(
            (CookieWindow(guild_id=r["guild_id"], member_id=r["member_id"], period=period, total=r["sum"]) for r in sums),
            batch_size=2000,
        )


def _lock_days() -> None:
    # Gives write their ledger row, then their day: while one guild's days are rebuilt, a give
    # waits at its day upsert and lands on the rebuilt total (its ledger row was not yet visible).
    if connection.vendor == "postgresql":
        with connection.cursor() as cursor:
            cursor.execute(f"LOCK TABLE {_table(CookieDay)} IN SHARE ROW EXCLUSIVE MODE")


def cookie_toplists_rebuild(*, guild_ids: list[int] | None = None, today: date | None = None) -> Iterator[tuple[int, int]]:
    """Recompute the days and windows of each guild (all with a ledger when None) from the ledger.

    Yields ``(guilds done, guilds in all)`` after each guild, for progress.
    """
    today = today or toplist_day(datetime.now(UTC))
    cookie_windows_roll(today=today)  # every window's clock at today's first day, which the rebuilt rows match
    if guild_ids is None:
        guild_ids = list(CookieLedger.objects.values_list("guild_id", flat=True).distinct().order_by("guild_id"))
    oldest = today - timedelta(days=KEPT_DAYS)
    since = datetime.combine(oldest, datetime.min.time(), tzinfo=UTC)
    for done, guild_id in enumerate(guild_ids, start=1):
        with transaction.atomic():
            _lock_days()
            CookieDay.objects.filter(guild_id=guild_id).delete()
            sums = (
                CookieLedger.objects.filter(guild_id=guild_id, reason__in=TOPLIST_REASONS, created_at__gte=since)
                .annotate(day=TruncDate("created_at", tzinfo=UTC))
                .values("receiver_id", "day")
                .annotate(sum=Sum("delta"))
                .order_by()
            )
            CookieDay.objects.bulk_create(
                (CookieDay(guild_id=guild_id, member_id=r["receiver_id"], day=r["day"], total=r["sum"]) for r in sums),
                batch_size=2000,
            )
            for period in PERIOD_DAYS:
                _windows_from_days(period=period, first_day=window_first_day(period, today), guild_id=guild_id)
        yield done, len(guild_ids)
