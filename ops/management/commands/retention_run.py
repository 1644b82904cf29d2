from django.core.management.base import BaseCommand, CommandError

from ops.retention import retention_run


class Command(BaseCommand):
    help = (
        "Archive expired and cleared timers (with their events) older than RETENTION_TIMER_DAYS and ledger rows "
        "older than RETENTION_LEDGER_DAYS into BACKUP_DIR/retention/, then delete them in short batches; each "
        "member's folded ledger rows become one carried-forward row. --dry-run only counts."
    )

    def add_arguments(self, parser):
        parser.add_argument("--dry-run", action="store_true", help="count what would be archived; change nothing")

    def handle(self, *args, **options):
        run = retention_run(dry_run=options["dry_run"])
        verb = "would archive" if run.dry_run else "archived"
        self.stdout.write(
            f"{verb} {run.timers_archived:,} timers with {run.events_archived:,} events and "
            f"{run.ledger_rows_folded:,} ledger rows"
        )
        if run.archive_path:
            self.stdout.write(f"archive: {run.archive_path}")
        if run.longest_batch_ms is not None:
            self.stdout.write(f"longest delete transaction: {run.longest_batch_ms:.1f} ms")
        if run.error:
            raise CommandError(f"retention failed, nothing deleted past the failure: {run.error}")
