from datetime import UTC, datetime

from django.core.management.base import BaseCommand, CommandError
from django.template.defaultfilters import filesizeformat

from ops.pitr.engines import pitr_engine
from ops.pitr.errors import PitrNotConfigured


def _at(moment) -> str:
    return f"{moment:%Y-%m-%d %H:%M:%S} UTC" if moment else "-"


class Command(BaseCommand):
    # Recovery must work while the site itself is broken (a bad URLconf, a half-applied deploy).
    requires_system_checks: list[str] = []
    help = (
        "Show the point-in-time recovery window: earliest and latest restorable moment, the last archived WAL "
        "(or Litestream file) and its age, and the backups. Exit 1 when recovery is configured but archiving "
        "is stalled or failing, 2 when it is not configured."
    )

    def handle(self, *args, **options):
        try:
            engine = pitr_engine()
        except PitrNotConfigured as exc:
            raise CommandError(str(exc), returncode=2) from None
        window = engine.window()
        now = datetime.now(UTC)
        age = window.archive_age_seconds(now)
        self.stdout.write(f"engine:              {window.engine}")
        self.stdout.write(f"repository:          {window.repository}")
        self.stdout.write(f"earliest restorable: {_at(window.earliest)}")
        self.stdout.write(f"latest restorable:   {_at(window.latest)}")
        archived = f"{window.last_archived or '-'} at {_at(window.last_archived_at)}"
        self.stdout.write(f"last archived:       {archived}" + (f" ({age:.0f} s ago)" if age is not None else ""))
        if window.engine == "pgbackrest":
            self.stdout.write(f"backups:             {len(window.backups)} (newest first)")
            for row in window.backups:
                state = " FAILED" if row["error"] else ""
                self.stdout.write(
                    f"  {row['label']:<26} {row['type']:<5} {_at(row['started_at'])} to {row['stopped_at']:%H:%M:%S}"
                    f"  {filesizeformat(row['size'])} (stored {filesizeformat(row['stored'])}){state}"
                )
        if window.problem:
            raise CommandError(f"problem: {window.problem}", returncode=1)
        self.stdout.write(self.style.SUCCESS("archiving: ok"))
