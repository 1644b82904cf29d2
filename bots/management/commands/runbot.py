import sys

from django.conf import settings
from django.core.management.base import BaseCommand


class Command(BaseCommand):
    help = "Run the Discord bot (the gateway connection). Needs DISCORD_TOKEN."
    # Django's system checks load the URLconf, the migration graph and every check module: memory the
    # bot process keeps for good (docs/performance.md, "Bot memory"). They run with the web process
    # and `manage.py check`; the bot serves no URLs and does not migrate.
    requires_system_checks: list[str] = []

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
