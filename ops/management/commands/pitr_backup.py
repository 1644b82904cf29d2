from django.core.management.base import BaseCommand, CommandError
from django.template.defaultfilters import filesizeformat

from config.errors import ApplicationError
from ops.pitr.engines import pitr_engine
from ops.pitr.errors import PitrNotConfigured


class Command(BaseCommand):
    # Recovery must work while the site itself is broken (a bad URLconf, a half-applied deploy).
    requires_system_checks: list[str] = []
    help = (
        "Take a pgBackRest backup of the PostgreSQL cluster: --type full, or diff (the changes since the newest "
        "full one). The worker takes them on a schedule (PITR_PGBACKREST_FULL_DAYS, PITR_PGBACKREST_DIFF_HOURS)."
    )

    def add_arguments(self, parser):
        parser.add_argument("--type", dest="kind", choices=("full", "diff"), default="diff")

    def handle(self, *args, kind, **options):
        try:
            engine = pitr_engine()
        except PitrNotConfigured as exc:
            raise CommandError(str(exc), returncode=2) from None
        if not hasattr(engine, "backup"):
            raise CommandError("Litestream snapshots the SQLite file by itself: there is no backup to take", returncode=2)
        try:
            row = engine.backup(kind, progress=self.stdout.write)
        except ApplicationError as exc:
            raise CommandError(str(exc)) from None
        took = (row["stopped_at"] - row["started_at"]).total_seconds()
        self.stdout.write(
            self.style.SUCCESS(
                f"{row['type']} backup {row['label']} made in {took:.0f} s: {filesizeformat(row['size'])} of data, "
                f"{filesizeformat(row['stored'])} stored"
            )
        )
