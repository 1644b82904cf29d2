from django.core.management.base import BaseCommand, CommandError

from ops.imports import ImportRefused, boostmon_import
from ops.imports.boostmon_sources import source_from_csv, source_from_dsn, source_from_json


class Command(BaseCommand):
    help = (
        "Import BoostMon's timed roles: from its PostgreSQL database (--dsn, role_timers and "
        "timer_allowed_roles), a CSV export of role_timers (--csv) or its older data.json (--json). "
        "Expiries keep their milliseconds, paused timers their remainder and deadline, sent warnings stay "
        "sent. Rows without a guild need --guild. Running it again changes nothing; --dry-run writes nothing."
    )

    def add_arguments(self, parser):
        source = parser.add_mutually_exclusive_group(required=True)
        source.add_argument("--dsn", metavar="URL", help="BoostMon's database, postgres://…")
        source.add_argument("--json", metavar="FILE", help="BoostMon's data.json")
        source.add_argument("--csv", metavar="FILE", help="\\copy role_timers TO FILE CSV HEADER")
        parser.add_argument("--guild", type=int, metavar="ID", help="the guild of rows whose guild_id is NULL")
        parser.add_argument("--dry-run", action="store_true", help="say what would change and write nothing")

    def handle(self, *args, **options):
        if options["guild"] is not None and options["guild"] <= 0:
            raise CommandError("--guild is a Discord guild id.")
        try:
            if options["dsn"]:
                source = source_from_dsn(options["dsn"])
            elif options["csv"]:
                source = source_from_csv(options["csv"])
            else:
                source = source_from_json(options["json"])
            report = boostmon_import(source=source, guild_id=options["guild"], write=self.write_raw, dry_run=options["dry_run"])
        except ImportRefused as exc:
            raise CommandError(str(exc)) from exc
        for line in report.lines():
            self.stdout.write(line)

    def write_raw(self, text: str) -> None:
        self.stdout.write(text, ending="")
        self.stdout.flush()
