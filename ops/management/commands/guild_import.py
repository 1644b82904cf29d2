from pathlib import Path

from django.core.management.base import BaseCommand, CommandError

from ops.bundles import BundleRefused, guild_import_file


class Command(BaseCommand):
    help = (
        "Import a bundle written by guild_export into an empty guild (its own, or --as-guild). Bad lines are "
        "refused with their line number and reason while the good rows go in; importing the same bundle "
        "again changes nothing and says so; a guild holding other data is refused, changing nothing."
    )

    def add_arguments(self, parser):
        parser.add_argument("--in", dest="path", required=True, metavar="FILE", help="the bundle (.jsonl or .jsonl.gz)")
        parser.add_argument("--as-guild", type=int, metavar="ID", help="import into this guild instead of the bundle's")

    def handle(self, *args, **options):
        try:
            summary = guild_import_file(path=Path(options["path"]), as_guild=options["as_guild"], write=self.write_raw)
        except BundleRefused as exc:
            raise CommandError(str(exc)) from exc
        for problem in summary.problems:
            self.stderr.write(f"refused {problem}")
        if summary.refused > len(summary.problems):
            self.stderr.write(f"… and {summary.refused - len(summary.problems):,} more refused lines")
        for note in summary.notes:
            self.stdout.write(note)
        line = f"guild {summary.guild_id}: imported {summary.imported:,}, unchanged {summary.unchanged:,}, refused {summary.refused:,}"
        self.stdout.write(self.style.WARNING(line) if summary.refused else self.style.SUCCESS(line))

    def write_raw(self, text: str) -> None:
        self.stdout.write(text, ending="")
        self.stdout.flush()
