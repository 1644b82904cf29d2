import getpass

from django.core.management.base import BaseCommand, CommandError

from ops.backups.drill import backup_drill_recorded


class Command(BaseCommand):
    help = (
        "Restore the newest backup (or --name) into a scratch database and compare the row count of every "
        "table with the counts recorded when it was made. Exits non-zero on any difference. Files whose "
        "sidecar this installation did not sign are refused unless --trust-unsigned is given. The result is kept "
        "(Status page)."
    )

    def add_arguments(self, parser):
        parser.add_argument("--name", help="the backup to drill (default: the newest signed one)")
        parser.add_argument(
            "--trust-unsigned",
            action="store_true",
            help="drill a file from another installation (its sidecar is not signed with this SECRET_KEY); logged",
        )

    def handle(self, *args, **options):
        actor = f"manage.py backup_drill --trust-unsigned (OS user {getpass.getuser()})"
        # Kept like the scheduled drills' results (the Status page lists them).
        result, report = backup_drill_recorded(name=options["name"], trust_unsigned=options["trust_unsigned"], actor=actor)
        if report is None:
            raise CommandError(result.error)
        width = max(len(row.table) for row in report.rows) if report.rows else 5
        self.stdout.write(f"drill of {report.name} ({report.vendor}) in {report.seconds:.1f} s")
        self.stdout.write(f"{'table':<{width}}  {'backup':>10}  {'restored':>10}")
        for row in report.rows:
            expected = "-" if row.expected is None else row.expected
            restored = "-" if row.restored is None else row.restored
            self.stdout.write(f"{row.table:<{width}}  {expected:>10}  {restored:>10}  {'ok' if row.ok else 'MISMATCH'}")
        if not report.ok:
            raise CommandError(f"drill failed: {len(report.mismatches)} table(s) differ")
        self.stdout.write(self.style.SUCCESS(f"drill passed: {len(report.rows)} tables, every count equal"))
