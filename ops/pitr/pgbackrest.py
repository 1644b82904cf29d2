"""Point-in-time recovery on PostgreSQL with pgBackRest.

``deploy/pitr/pgbackrest.sh`` configures the cluster (WAL archiving into a stanza's
repository); this module reads the recovery window from ``pgbackrest info`` and the
cluster's ``pg_stat_archiver``, takes full and differential backups, and restores a moment
into a scratch cluster (``ops.pitr.scratch``), never into the live one.

pgBackRest runs as the PostgreSQL OS user: as root, Guildhall runs it as the owner of the
configuration file (which the script gives to the cluster's owner); otherwise
``PITR_PGBACKREST_COMMAND`` says how (for instance ``sudo -n -u postgres pgbackrest``).
"""

from __future__ import annotations

import configparser
import json
import logging
import re
import shlex
import subprocess
from collections.abc import Callable
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path

import psycopg
from django.conf import settings
from django.db import connections

from ops.pitr.errors import PitrError, PitrFailed, PitrNotConfigured, PitrRefused, RecoveryBeyondArchive
from ops.pitr.scratch import ScratchTarget, run_as, scratch_check, scratch_parse, scratch_prepare, scratch_start
from ops.pitr.window import RecoveryWindow

logger = logging.getLogger(__name__)

ENGINE = "pgbackrest"
# A finished WAL segment waiting longer than this for the archiver means archiving is stuck
# (it normally goes within a second; a failing or hanging archive_command keeps it waiting).
READY_STALL_SECONDS = 120
Progress = Callable[[str], None] | None


@dataclass(frozen=True)
class Stanza:
    """What Guildhall needs from the pgbackrest.conf the script wrote."""

    name: str
    config: Path
    pg_path: Path
    pg_port: int
    pg_socket: str
    pg_user: str
    repository: str  # a path, or s3://bucket/path (never credentials)


def configured() -> bool:
    return bool(settings.PITR_PGBACKREST_STANZA and settings.PITR_PGBACKREST_CONFIG)


def stanza() -> Stanza:
    """The configured stanza, read from its pgbackrest.conf."""
    if not configured():
        raise PitrNotConfigured("point-in-time recovery is not configured (set PITR_PGBACKREST_STANZA)")
    name, path = settings.PITR_PGBACKREST_STANZA, Path(settings.PITR_PGBACKREST_CONFIG)
    parser = configparser.ConfigParser(interpolation=None, strict=False)
    try:
        with open(path, encoding="utf-8") as handle:
            parser.read_file(handle)
    except OSError as exc:
        raise PitrNotConfigured(f"cannot read PITR_PGBACKREST_CONFIG {path}: {exc.strerror}") from None
    if not parser.has_section(name) or not parser.has_option(name, "pg1-path"):
        raise PitrNotConfigured(f"{path} has no stanza [{name}] with a pg1-path: run deploy/pitr/pgbackrest.sh")

    def option(key: str, default: str) -> str:
        for section in (name, "global"):
            if parser.has_option(section, key):
                return parser.get(section, key)
        return default

    repo = option("repo1-path", "/var/lib/pgbackrest")
    if option("repo1-type", "posix") == "s3":
        repo = f"s3://{option('repo1-s3-bucket', '?')}{repo}"
    return Stanza(
        name=name,
        config=path,
        pg_path=Path(option("pg1-path", "")),
        pg_port=int(option("pg1-port", "5432")),
        pg_socket=option("pg1-socket-path", "/var/run/postgresql"),
        pg_user=option("pg1-user", "postgres"),
        repository=repo,
    )


def _argv(target: Stanza, args: tuple[str, ...]) -> list[str]:
    command = shlex.split(settings.PITR_PGBACKREST_COMMAND)
    return [*run_as(target.config), *command, f"--config={target.config}", f"--stanza={target.name}", *args]


def pgbackrest(target: Stanza, *args: str, timeout: float = 3600) -> str:
    """Run one pgbackrest command for the stanza; its stdout, or PitrFailed with its last words."""
    argv = _argv(target, args)
    try:
        done = subprocess.run(argv, capture_output=True, text=True, timeout=timeout, check=False)
    except FileNotFoundError:
        raise PitrFailed(f"{argv[0]} is not installed (Debian: apt-get install pgbackrest)") from None
    except subprocess.TimeoutExpired:
        raise PitrFailed(f"pgbackrest {args[0]} did not finish within {timeout:.0f} s") from None
    if done.returncode != 0:
        said = (done.stderr.strip() or done.stdout.strip()).splitlines()
        raise PitrFailed(f"pgbackrest {args[0]} failed (exit {done.returncode}): {' '.join(said[-3:])}")
    return done.stdout


def pgbackrest_followed(target: Stanza, *args: str, progress: Progress) -> None:
    """Run a long pgbackrest command (backup, restore), saying how far it is every 10%."""
    if progress is None:
        pgbackrest(target, *args, timeout=24 * 3600)
        return
    # At log level detail pgBackRest prints one line per file copied, ending "(size, NN.NN%)".
    argv = _argv(target, (*args, "--log-level-console=detail"))
    try:
        process = subprocess.Popen(argv, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True)
    except FileNotFoundError:
        raise PitrFailed(f"{argv[0]} is not installed (Debian: apt-get install pgbackrest)") from None
    said: list[str] = []
    step = 0
    assert process.stdout is not None
    for line in process.stdout:
        said = [*said[-4:], line.strip()]
        found = _PERCENT.search(line)
        if found and float(found.group(1)) >= step + 10:
            step = int(float(found.group(1)) // 10 * 10)
            progress(f"pgbackrest {args[0]}: {step}% of the files")
    if process.wait() != 0:
        errors = [line for line in said if "ERROR" in line] or said
        raise PitrFailed(f"pgbackrest {args[0]} failed (exit {process.returncode}): {' '.join(errors[-3:])}")


_PERCENT = re.compile(r", ([0-9.]+)%\)")


def _when(epoch: int | None) -> datetime | None:
    return datetime.fromtimestamp(epoch, UTC) if epoch else None


def backups(info: dict) -> list[dict]:
    """The stanza's backups, oldest first, as rows for the Backups page."""
    rows = []
    for item in info.get("backup", []):
        rows.append(
            {
                "label": item["label"],
                "type": item["type"],
                "started_at": _when(item["timestamp"]["start"]),
                "stopped_at": _when(item["timestamp"]["stop"]),
                "size": item["info"]["size"],
                "stored": item["info"]["repository"]["delta"],
                "wal_start": item["archive"]["start"],
                "wal_stop": item["archive"]["stop"],
                "error": bool(item.get("error")),
            }
        )
    return rows


def _archiver(target: Stanza) -> dict:
    """``pg_stat_archiver`` and the segments waiting to be archived, from the stanza's cluster."""
    sql_archiver = (
        "SELECT last_archived_wal, last_archived_time, last_failed_wal, last_failed_time, failed_count,"
        " current_setting('archive_command') FROM pg_stat_archiver"
    )
    # pg_ls_archive_statusdir needs superuser or pg_monitor; without it the backlog is unknown.
    sql_ready = "SELECT count(*), min(modification) FROM pg_ls_archive_statusdir() WHERE name LIKE '%.ready'"
    try:
        with psycopg.connect(
            host=target.pg_socket, port=target.pg_port, user=target.pg_user, dbname="postgres", connect_timeout=5
        ) as conn:
            row = conn.execute(sql_archiver).fetchone()
            ready = conn.execute(sql_ready).fetchone()
    except psycopg.Error as first:
        # Peer authentication may refuse the socket; the live database is the same cluster when the ports agree.
        db = settings.DATABASES["default"]
        if connections["default"].vendor != "postgresql" or int(db.get("PORT") or 5432) != target.pg_port:
            return {"error": str(first).strip().splitlines()[0]}
        with connections["default"].cursor() as cursor:
            cursor.execute(sql_archiver)
            row = cursor.fetchone()
            try:
                cursor.execute(sql_ready)
                ready = cursor.fetchone()
            except Exception:
                ready = None
    assert row is not None
    keys = ("last_archived_wal", "last_archived_time", "last_failed_wal", "last_failed_time", "failed_count", "command")
    facts = dict(zip(keys, row, strict=True))
    facts["ready_count"], facts["ready_since"] = ready if ready else (None, None)
    return facts


def _problem(info: dict, facts: dict, now: datetime) -> str:
    """The most urgent thing wrong, in a line: archiving first (changes are being lost), then the repository."""
    if "error" in facts:
        return f"cannot read pg_stat_archiver from the cluster: {facts['error']}"
    failed_at, archived_at = facts["last_failed_time"], facts["last_archived_time"]
    if failed_at and (archived_at is None or failed_at > archived_at):
        return (
            f"WAL archiving is failing: {facts['last_failed_wal']} could not be archived"
            f" (last attempt {failed_at:%Y-%m-%d %H:%M:%S} UTC, {facts['failed_count']} failures);"
            " check archive_command and the repository"
        )
    since = facts.get("ready_since")
    if facts.get("ready_count") and since and (now - since).total_seconds() > READY_STALL_SECONDS:
        return (
            f"WAL archiving is stalled: {facts['ready_count']} finished WAL segment(s) waiting to be archived"
            f" since {since:%Y-%m-%d %H:%M:%S} UTC"
        )
    status = info.get("status", {})
    if status.get("code", 0) != 0:
        if status["code"] == 2:
            return f"no backup yet ({status.get('message')}): take one with manage.py pitr_backup --type full"
        return f"pgBackRest reports: {status.get('message', 'unknown')}"
    return ""


def window(*, now: datetime | None = None) -> RecoveryWindow:
    """The moments a restore can reach: from the oldest backup's end to the newest archived WAL."""
    target = stanza()
    now = now or datetime.now(UTC)
    try:
        info_list = json.loads(pgbackrest(target, "info", "--output=json", timeout=60))
    except PitrFailed as exc:
        return RecoveryWindow(engine=ENGINE, repository=target.repository, earliest=None, latest=None, problem=str(exc))
    info = info_list[0] if info_list else {}
    rows = backups(info)
    good = [row for row in rows if not row["error"]]
    facts = _archiver(target)
    earliest = good[0]["stopped_at"] if good else None
    latest = good[-1]["stopped_at"] if good else None
    archived_at = facts.get("last_archived_time")
    # The newest archived segment extends the window only if it follows the newest backup.
    if good and archived_at and (facts.get("last_archived_wal") or "")[8:] >= good[-1]["wal_stop"][8:]:
        latest = max(latest, archived_at) if latest else archived_at
    return RecoveryWindow(
        engine=ENGINE,
        repository=target.repository,
        earliest=earliest,
        latest=latest,
        last_archived=facts.get("last_archived_wal") or "",
        last_archived_at=archived_at,
        problem=_problem(info, facts, now),
        backups=list(reversed(rows)),
    )


def backup(kind: str, *, progress: Progress = None) -> dict:
    """Take a ``full`` or ``diff`` backup; the new backup's row (as in ``window().backups``)."""
    if kind not in ("full", "diff"):
        raise PitrRefused(f"a backup is full or diff, not {kind!r}")
    target = stanza()
    if progress:
        progress(f"pgbackrest backup --type={kind} of {target.pg_path} into {target.repository}")
    pgbackrest_followed(target, "backup", f"--type={kind}", progress=progress)
    rows = backups(json.loads(pgbackrest(target, "info", "--output=json", timeout=60))[0])
    logger.info("pgBackRest %s backup %s made", kind, rows[-1]["label"])
    return rows[-1]


def _refuse_live(target: Stanza, into: ScratchTarget) -> None:
    live_paths = [target.pg_path.resolve()]
    if into.datadir == live_paths[0] or live_paths[0] in into.datadir.parents or into.datadir in live_paths[0].parents:
        raise PitrRefused(f"{into.datadir} is the live cluster's data directory (or holds it): restore into a scratch one")
    live_ports = {target.pg_port}
    for alias in ("default", "replica"):
        db = settings.DATABASES.get(alias)
        if db and "postgresql" in db["ENGINE"] and (db.get("HOST") or "localhost") in ScratchTarget.LOCAL_HOSTS:
            live_ports.add(int(db.get("PORT") or 5432))
    if into.port in live_ports:
        raise PitrRefused(f"port {into.port} is the live database's: restore into a scratch cluster on another port")


def restore(moment: datetime, into: str, *, progress: Progress = None) -> None:
    """Restore the stanza to ``moment`` into the scratch cluster ``into``, start it and check it.

    ``into`` is ``postgres://[user@]127.0.0.1:PORT/[dbname]?datadir=/empty/dir`` or just
    ``/empty/dir`` (a free port is picked). The cluster is left running on that port,
    promoted, with WAL archiving off so it never writes into the live stanza's repository.
    """
    say = progress or (lambda line: None)
    target = stanza()
    scratch = scratch_parse(into)
    _refuse_live(target, scratch)
    scratch_check(scratch)
    if moment.tzinfo is None:
        raise PitrRefused("the moment needs a time zone (UTC is assumed by manage.py pitr_restore)")
    found = window()
    if found.earliest is None or found.latest is None:
        raise PitrRefused(f"nothing to restore from: {found.problem or 'no backup yet'}")
    if not found.earliest <= moment <= found.latest:
        raise PitrRefused(
            f"{moment:%Y-%m-%d %H:%M:%S} UTC is outside the recovery window "
            f"{found.earliest:%Y-%m-%d %H:%M:%S} to {found.latest:%Y-%m-%d %H:%M:%S} UTC; nothing was restored"
        )
    scratch_prepare(scratch, owner_of=target.config)
    stamp = moment.astimezone(UTC).strftime("%Y-%m-%d %H:%M:%S.%f+00")
    say(f"restoring {target.name} to {stamp} into {scratch.datadir} (pgbackrest restore --type=time)")
    _restore_files(target, scratch, ["--type=time", f"--target={stamp}", "--target-action=promote"], progress=say)
    say("files restored; starting the scratch cluster and replaying WAL to that moment")
    try:
        outcome = scratch_start(scratch, owner_of=target.config, progress=say)
    except RecoveryBeyondArchive:
        # PostgreSQL stops at the first commit after the moment; none is archived yet (the moment is
        # near the window's end), so every archived change precedes it: the archive's end is that moment.
        say("nothing committed after that moment is archived yet: restoring to the end of the archived WAL instead")
        # Recovery to the end of the archive promotes by itself once no more WAL is found.
        _restore_files(target, scratch, ["--type=default", "--delta"], progress=say)
        outcome = scratch_start(scratch, owner_of=target.config, progress=say)
    say(f"ready: {outcome}")


def _restore_files(target: Stanza, scratch: ScratchTarget, recovery: list[str], *, progress: Progress) -> None:
    try:
        pgbackrest_followed(
            target,
            "restore",
            *recovery,
            f"--pg1-path={scratch.datadir}",
            # The scratch cluster must never push its own WAL into the live stanza's repository.
            "--archive-mode=off",
            progress=progress,
        )
    except PitrError as exc:
        raise PitrFailed(f"{exc}; {scratch.datadir} may hold a partial restore: remove it before trying again") from None
