from django.core.management.base import BaseCommand, CommandError

from ops.moves import MoveRefused, database_move
from ops.moves.move import DEFAULT_BATCH


class Command(BaseCommand):
    help = (
        "Copy every table of this database (DATABASE_URL, or the SQLite default) into the database at --to "
        "(postgres://… or sqlite:///…): migrate it, copy in batches, set its sequences, then compare every "
        "table's row count and checksum. Refuses a target holding data (unless --replace), a source with "
        "unapplied migrations, an unreachable target and the source itself. The source is only read. "
        "Exits non-zero on any difference."
    )

    def add_arguments(self, parser):
        parser.add_argument("--to", required=True, metavar="URL", help="the target database")
        parser.add_argument("--replace", action="store_true", help="empty Guildhall's tables in a target that holds data")
        parser.add_argument("--yes", action="store_true", help="with --replace: don't ask for the typed confirmation")
        parser.add_argument("--batch-size", type=int, default=DEFAULT_BATCH, help=f"rows per batch (default {DEFAULT_BATCH})")

    def handle(self, *args, **options):
        try:
            report = database_move(
                target_url=options["to"],
                replace=options["replace"],
                yes=options["yes"],
                confirm=self.ask,
                write=self.write_raw,
                batch_size=max(1, options["batch_size"]),
            )
        except MoveRefused as exc:
            raise CommandError(str(exc)) from exc
        width = max(len(row.table) for row in report.tables)
        self.stdout.write(f"\n{'table':<{width}}  {'rows':>12}  {'checksum':<8}  {'seconds':>8}")
        for row in report.tables:
            rows = f"{row.source.rows:,}" if row.source.rows == row.target.rows else f"{row.source.rows:,}→{row.target.rows:,}"
            match = "match" if row.source.checksum == row.target.checksum else "MISMATCH"
            self.stdout.write(f"{row.table:<{width}}  {rows:>12}  {match:<8}  {row.seconds:>8.2f}")
        if not report.ok:
            raise CommandError(f"verification failed: {len(report.mismatches)} table(s) differ between source and target")
        total = sum(row.source.rows for row in report.tables[:-1])
        self.stdout.write(
            self.style.SUCCESS(
                f"moved {total:,} rows in {len(report.tables) - 1} tables in {report.seconds:.1f} s; every table matches"
            )
        )
        self.stdout.write(f"Next, with the processes still stopped: set DATABASE_URL={report.target} and run make run.")

    def write_raw(self, text: str) -> None:
        self.stdout.write(text, ending="")
        self.stdout.flush()

    def ask(self, prompt: str) -> str:
        self.write_raw(prompt)
        try:
            return input()
        except EOFError:  # no terminal (a script, a pipe): nothing was typed
            return ""
