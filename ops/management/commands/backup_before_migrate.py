from django.core.management.base import BaseCommand, CommandError
from django.db import DEFAULT_DB_ALIAS, connections
from django.db.migrations.executor import MigrationExecutor

from config.errors import ApplicationError
from ops.backups.services import backup_create


class Command(BaseCommand):
    help = (
        "Take a pre-migrate backup when migrations are pending and the database already has data, so that a "
        "bad migration can be undone by restoring it. Prints one line; exits non-zero if the backup fails."
    )

    def add_arguments(self, parser):
        parser.add_argument("--database", default=DEFAULT_DB_ALIAS)

    def handle(self, *args, **options):
        alias = options["database"]
        executor = MigrationExecutor(connections[alias])
        if not executor.recorder.has_table() or not executor.loader.applied_migrations:
            self.stdout.write("pre-migrate backup: not needed (the database has no tables yet)")
            return
        pending = executor.migration_plan(executor.loader.graph.leaf_nodes())
        if not pending:
            self.stdout.write("pre-migrate backup: not needed (no pending migrations)")
            return
        try:
            backup = backup_create(kind="pre-migrate", origin="manage.py backup_before_migrate", alias=alias)
        except ApplicationError as exc:
            raise CommandError(f"pre-migrate backup failed, so nothing was migrated: {exc}") from exc
        self.stdout.write(f"pre-migrate backup: {backup.name} ({len(pending)} pending migrations)")
