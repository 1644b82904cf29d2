"""Recompute the rolling toplists (last 7 and 30 days) from the cookie ledger."""

from __future__ import annotations

from django.core.management.base import BaseCommand

from commands.services import cookie_toplists_rebuild


class Command(BaseCommand):
    help = (
        "Recompute the per-day sums and the 7- and 30-day toplists from the cookie ledger, one guild per "
        "transaction (all guilds with a ledger, or those given). Safe while the bot runs."
    )

    def add_arguments(self, parser) -> None:
        parser.add_argument("--guild", type=int, action="append", dest="guilds", help="A guild id (repeatable).")

    def handle(self, *args, guilds: list[int] | None = None, **options) -> None:
        done = total = 0
        for done, total in cookie_toplists_rebuild(guild_ids=guilds):
            if done == total or done % 10 == 0:
                self.stdout.write(f"{done} of {total} guilds rebuilt")
        if not total:
            self.stdout.write("No cookie ledger to rebuild from.")
        else:
            self.stdout.write(self.style.SUCCESS(f"Rebuilt the toplists of {done} guilds."))
