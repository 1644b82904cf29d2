import os

from django.apps import AppConfig
from django.db.backends.signals import connection_created


class OpsConfig(AppConfig):
    name = "ops"
    verbose_name = "Operations"

    def ready(self) -> None:
        from config.database import close_pools_before_fork, install_slow_query_logger

        connection_created.connect(install_slow_query_logger, dispatch_uid="guildhall-slow-query-logger")
        # q2 forks its processes; a pooled connection must never be shared across a fork.
        os.register_at_fork(before=close_pools_before_fork)
