"""Fill the 7- and 30-day toplists from the ledger of the last 30 days, so they are right from the upgrade on.

The same computation as ``manage.py cookie_toplists_rebuild``, written against the
historical models; a database with no ledger does nothing.
"""

from datetime import UTC, datetime, timedelta

from django.db import migrations
from django.db.models import Sum
from django.db.models.functions import TruncDate

REASONS = ("give", "take", "thanks")
PERIODS = {"7d": 7, "30d": 30}


def backfill(apps, schema_editor):
    ledger = apps.get_model("commands", "CookieLedger")
    day_model = apps.get_model("commands", "CookieDay")
    window = apps.get_model("commands", "CookieWindow")
    clock = apps.get_model("commands", "CookieWindowClock")
    db = schema_editor.connection.alias
    today = datetime.now(UTC).date()
    since = datetime.combine(today - timedelta(days=30), datetime.min.time(), tzinfo=UTC)
    sums = (
        ledger.objects.using(db)
        .filter(reason__in=REASONS, created_at__gte=since)
        .annotate(day=TruncDate("created_at", tzinfo=UTC))
        .values("guild_id", "receiver_id", "day")
        .annotate(total=Sum("delta"))
        .order_by()
    )
    day_model.objects.using(db).bulk_create(
        (day_model(guild_id=r["guild_id"], member_id=r["receiver_id"], day=r["day"], total=r["total"]) for r in sums.iterator()),
        batch_size=5000,
        ignore_conflicts=True,
    )
    for period, days in PERIODS.items():
        first = today - timedelta(days=days - 1)
        totals = (
            day_model.objects.using(db)
            .filter(day__gte=first)
            .values("guild_id", "member_id")
            .annotate(total=Sum("total"))
            .exclude(total=0)
            .order_by()
        )
        window.objects.using(db).bulk_create(
            (
                window(guild_id=r["guild_id"], member_id=r["member_id"], period=period, total=r["total"])
                for r in totals.iterator()
            ),
            batch_size=5000,
            ignore_conflicts=True,
        )
        clock.objects.using(db).get_or_create(period=period, defaults={"first_day": first})


class Migration(migrations.Migration):
    dependencies = [("commands", "0008_cookie_toplists")]

    operations = [migrations.RunPython(backfill, migrations.RunPython.noop)]
