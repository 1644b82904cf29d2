from pathlib import Path

from django.core.management.base import BaseCommand, CommandError

from ops.bundles import guild_export_file, guild_ids_with_data


class Command(BaseCommand):
    help = (
        "Write one guild's data (settings, commands and aliases, cookie balances and ledger, timers with "
        "their events, allowed roles, reports) as a versioned JSON Lines bundle, gzip-compressed when the "
        "file name ends in .gz. With --all, one bundle per guild into the folder --out."
    )

    def add_arguments(self, parser):
        parser.add_argument("--guild", type=int, metavar="ID", help="the guild to export")
        parser.add_argument("--all", action="store_true", help="every guild that has data, one file each")
        parser.add_argument("--out", required=True, metavar="FILE|DIR", help="the bundle file (or, with --all, the folder)")

    def handle(self, *args, **options):
        out = Path(options["out"])
        if options["all"] == (options["guild"] is not None):
            raise CommandError("Give either --guild ID or --all.")
        if options["all"]:
            out.mkdir(parents=True, exist_ok=True)
            targets = [(guild_id, out / f"guild-{guild_id}.jsonl.gz") for guild_id in guild_ids_with_data()]
        else:
            if out.is_dir():
                raise CommandError(f"{out} is a folder; give a file name (or use --all).")
            targets = [(options["guild"], out)]
        for guild_id, path in targets:
            counts = guild_export_file(guild_id=guild_id, path=path, write=self.write_raw)
            self.stdout.write(f"guild {guild_id}: {sum(counts.values()):,} rows to {path}")
        self.stdout.write(self.style.SUCCESS(f"exported {len(targets)} guild{'s' if len(targets) != 1 else ''}"))

    def write_raw(self, text: str) -> None:
        self.stdout.write(text, ending="")
        self.stdout.flush()
