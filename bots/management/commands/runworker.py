import signal

from django_q import cluster
from django_q.management.commands.qcluster import Command as QclusterCommand


class SentinelKeepingOnSigterm(cluster.Sentinel):
    """q2's Sentinel, except that a SIGTERM sent to the whole process group doesn't kill it.

    django-q2 1.11's Sentinel (and every worker it forks) takes SIGTERM's default action, so
    a group-wide SIGTERM (honcho under ``make run``, Heroku) kills it outright while the
    cluster's main process, told to stop by the same signal, waits forever on the stop
    event the dead Sentinel was waiting on. Ignoring it here leaves the stop to the main
    process, which stops the cluster the orderly way: each running task sees the stop,
    finishes or releases its work, and every process exits.
    """

    def __init__(self, *args, **kwargs):
        start = kwargs.pop("start", True)
        super().__init__(*args, start=False, **kwargs)
        signal.signal(signal.SIGTERM, signal.SIG_IGN)
        if start:
            self.start()


class Command(QclusterCommand):
    help = "Run the worker: a django-q2 cluster that also stops cleanly when its whole process group gets SIGTERM."

    def handle(self, *args, **options):
        cluster.Sentinel = SentinelKeepingOnSigterm  # the cluster looks the class up when it starts
        super().handle(*args, **options)
