import os
import sys

from django.core.management.base import BaseCommand, CommandError

from ops.pitr import litestream


class Command(BaseCommand):
    help = (
        "Print Litestream's config for this installation, built from the settings (LITESTREAM_REPLICA_URL, "
        "BACKUP_S3_ENDPOINT_URL, LITESTREAM_SYNC_INTERVAL_SECONDS, LITESTREAM_RETENTION_HOURS). --write saves it to "
        "LITESTREAM_CONFIG_PATH; --replicate saves it and becomes `litestream replicate` (the Procfile's litestream "
        "process); --check exits 0 when Litestream is configured, 1 when not (make run uses it)."
    )

    def add_arguments(self, parser):
        group = parser.add_mutually_exclusive_group()
        group.add_argument("--write", action="store_true", help="write the config to LITESTREAM_CONFIG_PATH")
        group.add_argument("--replicate", action="store_true", help="write the config, then run litestream replicate")
        group.add_argument("--check", action="store_true", help="exit 0 when configured, 1 when not; print nothing")

    def handle(self, *args, **options):
        if options["check"]:
            sys.exit(0 if litestream.configured() else 1)
        try:
            if not (options["write"] or options["replicate"]):
                self.stdout.write(litestream.config_text(), ending="")
                return
            path = litestream.config_write()
            binary = litestream.binary()
        except litestream.LitestreamError as exc:
            raise CommandError(str(exc)) from None
        if options["write"]:
            self.stdout.write(f"wrote {path}")
            return
        self.stdout.write(f"litestream replicating {litestream.database_path()} with {path}")
        self.stdout.flush()
        # Become litestream: the process manager's SIGTERM reaches it directly and it ships the last changes.
        os.execve(binary, [binary, "replicate", "-no-expand-env", "-config", str(path)], litestream.environment())
