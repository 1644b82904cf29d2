import sys

from django.conf import settings
from django.core.management.base import BaseCommand


class Command(BaseCommand):
    help = "Run the Discord bot (the gateway connection). Needs DISCORD_TOKEN."

    def handle(self, *args, **options):
        if not settings.DISCORD_TOKEN:
            self.stderr.write("runbot: DISCORD_TOKEN is not set; set it to the bot token from the Discord developer portal.")
            sys.exit(2)
        from bots.runtime import StartupError, run

        try:
            code = run()
        except StartupError as exc:
            self.stderr.write(f"runbot: {exc}")
            sys.exit(exc.exit_code)
        self.stdout.write("runbot: stopped")
        sys.exit(code)
