"""The timer engine: the sweep loop (engine), the relay of runs that drives it (relay), and
how a run learns that its worker is stopping (stop)."""

from bots.sweeper.engine import CONCURRENCY, POLL_SECONDS, STOP_GRACE, Sweeper, SweepFigures, worker_name

__all__ = ["CONCURRENCY", "POLL_SECONDS", "STOP_GRACE", "SweepFigures", "Sweeper", "worker_name"]
