from django.core.management.base import BaseCommand, CommandError

from ops.imports import ImportRefused, praetbot_import


class Command(BaseCommand):
    help = (
        "Import Praetbot's custom commands and cookie counts (mongoexport output of its `commands` and "
        "`cookie` collections, one document per line or a JSON array) into one guild. Plain JavaScript "
        "replies are translated; other JavaScript is imported disabled with its body kept. Running it "
        "again changes nothing; bad documents are reported by line and the rest still go in."
    )

    def add_arguments(self, parser):
        parser.add_argument("--guild", type=int, required=True, metavar="ID", help="the guild to import into")
        parser.add_argument("--commands", metavar="FILE", help="mongoexport of the commands collection")
        parser.add_argument("--cookies", metavar="FILE", help="mongoexport of the cookie collection")

    def handle(self, *args, **options):
        if not options["commands"] and not options["cookies"]:
            raise CommandError("Give --commands FILE, --cookies FILE or both.")
        if options["guild"] <= 0:
            raise CommandError("--guild is a Discord guild id.")
        try:
            report = praetbot_import(
                guild_id=options["guild"],
                commands_path=options["commands"],
                cookies_path=options["cookies"],
                write=self.write_raw,
            )
        except ImportRefused as exc:
            raise CommandError(str(exc)) from exc
        for line in report.lines():
            self.stdout.write(line)

    def write_raw(self, text: str) -> None:
        self.stdout.write(text, ending="")
        self.stdout.flush()
