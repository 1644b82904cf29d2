"""PostgreSQL clusters of the benchmarks' own (initdb in a temp dir, a port of their own).

The shared server on 5432 is never stopped, killed or reconfigured: drills that kill a
postmaster or turn archiving on do it to a cluster made here. As root, the server and its
tools run as the ``postgres`` OS user (initdb refuses root).
"""

from __future__ import annotations

import os
import shutil
import signal
import subprocess
import time
from pathlib import Path

PG_BIN = Path(os.environ.get("PG_BIN", "/usr/lib/postgresql/15/bin"))


def as_owner(args: list[str]) -> list[str]:
    """``args`` run as the postgres OS user when we are root."""
    return ["runuser", "-u", "postgres", "--", *args] if os.geteuid() == 0 else args


def give_to_owner(path: Path) -> None:
    if os.geteuid() == 0:
        shutil.chown(path, "postgres", "postgres")


def descendants(pid: int) -> list[int]:
    """``pid`` and every process below it (an archive_command's pgbackrest included)."""
    found, queue = [], [pid]
    while queue:
        current = queue.pop()
        found.append(current)
        queue += map(int, subprocess.run(["pgrep", "-P", str(current)], capture_output=True, text=True).stdout.split())
    return found


class Cluster:
    """One data directory, served on 127.0.0.1:``port`` with its socket beside it."""

    def __init__(self, data: Path, port: int) -> None:
        self.data, self.port = Path(data), port
        self.socket_dir = self.data.parent / f"sock{port}"

    def url(self, db: str) -> str:
        return f"postgres://postgres@127.0.0.1:{self.port}/{db}"

    def init(self, *conf: str) -> Cluster:
        self.data.parent.mkdir(parents=True, exist_ok=True)
        give_to_owner(self.data.parent)
        subprocess.run(as_owner([str(PG_BIN / "initdb"), "-D", str(self.data), "-U", "postgres", "--auth=trust", "-E", "UTF8"]),
                       check=True, capture_output=True)  # fmt: skip
        self.configure(*conf)
        return self

    def configure(self, *conf: str) -> None:
        self.socket_dir.mkdir(exist_ok=True)
        give_to_owner(self.socket_dir)
        lines = [f"port = {self.port}", "listen_addresses = '127.0.0.1'", f"unix_socket_directories = '{self.socket_dir}'",
                 "fsync = on", "synchronous_commit = on", *conf]  # fmt: skip
        with open(self.data / "postgresql.auto.conf", "a") as auto:
            auto.write("\n".join(lines) + "\n")

    def start(self, timeout: int = 600) -> None:
        subprocess.run(
            as_owner([str(PG_BIN / "pg_ctl"), "-D", str(self.data), "-l", str(self.data / "server.log"), "-w", "-t", str(timeout), "start"]),
            check=True, capture_output=True,
        )  # fmt: skip

    def wait_promoted(self, timeout: float = 3600) -> None:
        """Wait until recovery has finished: a restored cluster accepts (read-only) connections before that."""
        deadline = time.monotonic() + timeout
        while self.psql("SELECT pg_is_in_recovery()") != "f":
            if time.monotonic() > deadline:
                raise TimeoutError(f"{self.data} still in recovery after {timeout} s")
            time.sleep(0.2)

    def stop(self) -> None:
        if (self.data / "postmaster.pid").exists():
            subprocess.run(
                as_owner([str(PG_BIN / "pg_ctl"), "-D", str(self.data), "-m", "immediate", "stop"]), capture_output=True
            )

    def postmaster_pid(self) -> int:
        return int((self.data / "postmaster.pid").read_text().split()[0])

    def kill9(self) -> None:
        """SIGKILL the postmaster and its backends at once, as a machine that dies: nothing is flushed or archived."""
        for victim in descendants(self.postmaster_pid()):
            try:
                os.kill(victim, signal.SIGKILL)
            except ProcessLookupError:
                pass

    def psql(self, sql: str, db: str = "postgres") -> str:
        done = subprocess.run([str(PG_BIN / "psql"), "-X", "-q", "-At", "-v", "ON_ERROR_STOP=1", "-d", self.url(db), "-c", sql],
                              check=True, capture_output=True, text=True)  # fmt: skip
        return done.stdout.strip()

    def remove(self) -> None:
        self.stop()
        shutil.rmtree(self.data, ignore_errors=True)
        shutil.rmtree(self.socket_dir, ignore_errors=True)
