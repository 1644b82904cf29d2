import time
from datetime import UTC, datetime

from django.core.management.base import BaseCommand, CommandError

from config.errors import ApplicationError
from ops.pitr.engines import pitr_engine
from ops.pitr.errors import PitrNotConfigured


def moment_parse(text: str) -> datetime:
    """``YYYY-MM-DD HH:MM:SS[.ffffff][+HH:MM]``; without an offset the moment is UTC."""
    try:
        moment = datetime.fromisoformat(text.strip())
    except ValueError:
        raise CommandError(f"--to must look like 2026-12-01 12:34:56 (UTC unless an offset is given), not {text!r}") from None
    return moment.replace(tzinfo=UTC) if moment.tzinfo is None else moment.astimezone(UTC)


class Command(BaseCommand):
    # Recovery must work while the site itself is broken (a bad URLconf, a half-applied deploy).
    requires_system_checks: list[str] = []
    help = (
        "Restore the database as it was at a moment into a scratch target, never the live database. PostgreSQL "
        "(pgBackRest): --into postgres://[user@]127.0.0.1:PORT/[dbname]?datadir=/empty/dir, or --into /empty/dir "
        "(a free port is picked); the scratch cluster is left running there, promoted, with archiving off. "
        "Run it as root or as the cluster's OS user (pgBackRest and pg_ctl run as that user). "
        "SQLite (Litestream): --into /path/to/new.sqlite3. See manage.py pitr_status for the window."
    )

    def add_arguments(self, parser):
        parser.add_argument("--to", required=True, help='the moment, e.g. "2026-12-01 12:34:56" (UTC unless an offset)')
        parser.add_argument("--into", required=True, help="the scratch target (see above)")

    def handle(self, *args, to, into, **options):
        moment = moment_parse(to)
        try:
            engine = pitr_engine()
        except PitrNotConfigured as exc:
            raise CommandError(str(exc), returncode=2) from None
        started = time.monotonic()

        def progress(line: str) -> None:
            self.stdout.write(f"[{time.monotonic() - started:6.1f} s] {line}")

        try:
            engine.restore(moment, into, progress=progress)
        except ApplicationError as exc:
            raise CommandError(str(exc)) from None
        self.stdout.write(self.style.SUCCESS(f"restored to {moment:%Y-%m-%d %H:%M:%S} UTC in {time.monotonic() - started:.1f} s"))
