"""One flag for "this worker is stopping", whoever said so.

A q2 cluster stops in two ways, and a sweep must see both:
- SIGTERM or SIGINT to the ``qcluster`` process alone (Kubernetes, ``kill``, Ctrl-C in a
  terminal): django-q2 1.11 sets its Sentinel's ``stop_event`` and waits for the
  running task; the worker process gets no signal. The worker was forked from the
  Sentinel in the middle of ``Sentinel.spawn_process``, so that frame (and its
  ``self``) is still on the worker's stack: the flag is read from there.
- SIGTERM to the whole process group (honcho under ``make run``, Heroku): the worker
  gets the signal itself (and the Sentinel dies at once), so a handler sets the flag.
"""

from __future__ import annotations

import multiprocessing
import signal
import sys
import threading
from collections.abc import Iterator
from contextlib import contextmanager
from types import FrameType
from typing import Any

SIGNALS = (signal.SIGTERM, signal.SIGINT)


def q2_stop_event() -> Any | None:
    """The stop event of the django-q2 cluster this worker process belongs to, if any."""
    try:
        from django_q.cluster import Sentinel
    except ImportError:  # pragma: no cover - django-q2 is a requirement
        return None
    frame: FrameType | None = sys._getframe()
    while frame is not None:
        owner = frame.f_locals.get("self")
        if isinstance(owner, Sentinel):
            return owner.stop_event
        frame = frame.f_back
    return None


class StopFlag:
    """Set by a signal to this process, or read from the cluster's stop event."""

    def __init__(self) -> None:
        self._signalled = threading.Event()
        self._cluster = q2_stop_event()

    @property
    def signalled(self) -> bool:
        return self._signalled.is_set()

    def set(self) -> None:
        self._signalled.set()

    def is_set(self) -> bool:
        return self._signalled.is_set() or bool(self._cluster is not None and self._cluster.is_set())


@contextmanager
def stop_flag() -> Iterator[StopFlag]:
    """A :class:`StopFlag`, with SIGTERM/SIGINT handlers that set it while the block runs.

    Handlers can only be installed from the main thread; elsewhere (a test's thread) only
    the cluster's event counts. The previous handlers are put back afterwards.
    """
    flag = StopFlag()
    previous: dict[int, Any] = {}
    if threading.current_thread() is threading.main_thread():

        def handler(signum: int, frame: FrameType | None) -> None:
            flag.set()

        for sig in SIGNALS:
            # A worker ignoring SIGINT (q2's do) keeps ignoring it: Ctrl-C is the cluster's to handle.
            if signal.getsignal(sig) is not signal.SIG_IGN:
                previous[sig] = signal.signal(sig, handler)
    try:
        yield flag
    finally:
        for signum, old in previous.items():
            signal.signal(signum, old)


def parent_gone() -> bool:
    """True in a worker process whose parent (q2's Sentinel) has died."""
    parent = multiprocessing.parent_process()
    return parent is not None and not parent.is_alive()
