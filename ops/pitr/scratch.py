"""The scratch PostgreSQL cluster a point-in-time restore goes into, started on its own port.

``--into`` names it as ``postgres://[user@]127.0.0.1:PORT/[dbname]?datadir=/empty/dir`` (the
server is started here, so the host is local), or as just ``/empty/dir`` (a free port is
picked). The directory must be empty or missing, and nothing may listen on the port.
"""

from __future__ import annotations

import os
import pwd
import re
import shutil
import socket
import subprocess
import time
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from urllib.parse import parse_qs, unquote, urlsplit

from ops.pitr.errors import PitrFailed, PitrRefused, RecoveryBeyondArchive

FORMS = "postgres://[user@]127.0.0.1:PORT/[dbname]?datadir=/empty/dir, or /empty/dir"


@dataclass(frozen=True)
class ScratchTarget:
    LOCAL_HOSTS = ("127.0.0.1", "localhost", "::1", "")

    datadir: Path
    host: str
    port: int
    user: str
    dbname: str

    def url(self) -> str:
        host = f"[{self.host}]" if ":" in self.host else self.host
        return f"postgres://{self.user}@{host}:{self.port}/{self.dbname}"


def _free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return probe.getsockname()[1]


def _listening(host: str, port: int) -> bool:
    try:
        with socket.create_connection((host, port), timeout=1):
            return True
    except OSError:
        return False


def scratch_parse(into: str, *, user: str = "postgres") -> ScratchTarget:
    """Where the restore goes, from ``--into``; PitrRefused (nothing touched) when it cannot go there."""
    into = into.strip()
    if into.startswith(("postgres://", "postgresql://")):
        parts = urlsplit(into)
        host = parts.hostname or "127.0.0.1"
        if host not in ScratchTarget.LOCAL_HOSTS:
            raise PitrRefused(f"the scratch cluster is started on this machine: use 127.0.0.1, not {host}")
        try:
            port = parts.port
        except ValueError:
            port = None
        if not port:
            raise PitrRefused(f"--into needs the scratch cluster's port ({FORMS})")
        datadirs = parse_qs(parts.query).get("datadir", [])
        if not datadirs:
            raise PitrRefused(f"--into needs the scratch cluster's data directory as ?datadir= ({FORMS})")
        datadir = datadirs[0]
        user = unquote(parts.username) if parts.username else user
        dbname = parts.path.lstrip("/") or "postgres"
        host = "127.0.0.1" if host in ("localhost", "") else host
    elif into.startswith("/"):
        datadir, host, port, dbname = into, "127.0.0.1", _free_port(), "postgres"
    else:
        raise PitrRefused(f"--into is {FORMS}; not {into!r}")
    if not datadir.startswith("/"):
        raise PitrRefused(f"the scratch data directory must be an absolute path, not {datadir!r}")
    return ScratchTarget(datadir=Path(os.path.realpath(datadir)), host=host, port=port, user=user, dbname=dbname)


def scratch_check(target: ScratchTarget) -> None:
    """PitrRefused unless the directory is empty (or new) and nothing listens on the port."""
    path = target.datadir
    if path.exists() and (not path.is_dir() or any(path.iterdir())):
        raise PitrRefused(f"{path} is not an empty directory: a restore only goes into an empty (or new) one")
    if _listening(target.host, target.port):
        raise PitrRefused(f"something already listens on {target.host}:{target.port}: pick a free port for the scratch cluster")


def run_as(path: Path) -> list[str]:
    """``runuser -u OWNER --`` when root runs Guildhall and ``path`` belongs to the cluster's OS user.

    pgBackRest and the PostgreSQL programs must run as that user (a restored file owned by
    root would keep the cluster from starting).
    """
    if os.geteuid() != 0:
        return []
    uid = path.stat().st_uid
    return [] if uid == 0 else ["runuser", "-u", pwd.getpwuid(uid).pw_name, "--"]


def scratch_prepare(target: ScratchTarget, *, owner_of: Path) -> None:
    """Create the empty data directory, owned by the cluster's OS user (mode 0700, as PostgreSQL wants)."""
    target.datadir.mkdir(mode=0o700, parents=True, exist_ok=True)
    if os.geteuid() == 0:
        stat = owner_of.stat()
        os.chown(target.datadir, stat.st_uid, stat.st_gid)


def _bindir(datadir: Path) -> Path:
    version = (datadir / "PG_VERSION").read_text().strip()
    debian = Path(f"/usr/lib/postgresql/{version}/bin")
    if (debian / "pg_ctl").exists():
        return debian
    found = shutil.which("pg_ctl")
    if not found:
        raise PitrFailed(f"pg_ctl for PostgreSQL {version} is not installed")
    return Path(found).parent


def _log_tail(log: Path, lines: int = 3) -> str:
    try:
        text = log.read_text(errors="replace").splitlines()
    except OSError:
        return ""
    important = [line for line in text if "FATAL" in line or "PANIC" in line] or text
    return " | ".join(important[-lines:])


def _raise_stopped(log: Path, stderr: str) -> None:
    tail = _log_tail(log)
    if "before configured recovery target was reached" in tail:
        # PostgreSQL stops at the first commit after the moment; without one in the archive it cannot stop.
        raise RecoveryBeyondArchive(
            "recovery reached the end of the archived WAL before that moment: nothing committed after it has "
            "been archived yet (the newest WAL is archived within archive_timeout). Choose an earlier moment, "
            f"or wait and try again into a new directory. Server log: {log}"
        )
    raise PitrFailed(f"the scratch cluster stopped during recovery: {tail or stderr} (log {log})")


def _config_files_ensure(datadir: Path, owner_of: Path) -> None:
    """Debian keeps postgresql.conf and pg_hba.conf in /etc, so a backup may hold none: give the scratch its own."""
    files = {
        "postgresql.conf": "# Written by pitr_restore: the backup held none (the recovery settings are in postgresql.auto.conf).\n",
        "pg_hba.conf": "local all all peer\nhost all all 127.0.0.1/32 scram-sha-256\nhost all all ::1/128 scram-sha-256\n",
        "pg_ident.conf": "",
    }
    for name, text in files.items():
        path = datadir / name
        if not path.exists():
            path.write_text(text)
            if os.geteuid() == 0:
                os.chown(path, owner_of.stat().st_uid, owner_of.stat().st_gid)


def scratch_start(target: ScratchTarget, *, owner_of: Path, progress: Callable[[str], None]) -> str:
    """Start the restored cluster, wait until recovery reached its target and it was promoted; its URL."""
    bindir, prefix, log = _bindir(target.datadir), run_as(owner_of), target.datadir / "restore.log"
    _config_files_ensure(target.datadir, owner_of)
    options = f"-p {target.port} -k {target.datadir} -c listen_addresses={target.host}"
    started = subprocess.run(
        [*prefix, str(bindir / "pg_ctl"), "start", "-D", str(target.datadir), "-w", "-t", "3600", "-l", str(log), "-o", options],
        capture_output=True,
        text=True,
        check=False,
    )
    if started.returncode != 0:
        _raise_stopped(log, started.stderr.strip())
    psql = [*prefix, str(bindir / "psql"), "-X", "-At", "-h", str(target.datadir), "-p", str(target.port)]
    psql += ["-U", target.user, "-d", "postgres", "-c"]
    deadline, last_said = time.monotonic() + 3600, 0.0
    while True:
        asked = subprocess.run([*psql, "SELECT pg_is_in_recovery()"], capture_output=True, text=True, check=False)
        if asked.stdout.strip() == "f":
            break
        if asked.returncode != 0 and not (target.datadir / "postmaster.pid").exists():
            _raise_stopped(log, asked.stderr.strip())
        if time.monotonic() > deadline:
            raise PitrFailed(f"recovery did not finish within an hour (log {log})")
        if time.monotonic() - last_said > 10:
            progress("replaying WAL…")
            last_said = time.monotonic()
        time.sleep(0.2)
    stop = re.findall(r"recovery stopping (?:before|after) .*", log.read_text(errors="replace"))
    reached = f"; {stop[-1]}" if stop else ""
    return f"{target.url()} (data in {target.datadir}, promoted{reached}); stop it with: pg_ctl stop -D {target.datadir}"
