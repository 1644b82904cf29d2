"""Backups kept in BACKUP_DIR against backups kept in S3 (moto's server on loopback): seconds per step.

    GUILDHALL_DATA_DIR=$(mktemp -d) env -u DATABASE_URL .venv/bin/python bench/offsite_backups.py [--mb 64]

Fills a scratch SQLite database (migrated here) with ``--mb`` MiB of rows (half random,
half repetitive text), then times backup_create and backup_verify with the local folder
and with an S3 bucket on a moto server started here. The baseline, in the same run, is
boto3's plain upload_file and download_file of the same compressed file: what S3 costs
before Guildhall reads the copy back (create) or checks it (verify).
"""

from __future__ import annotations

import argparse
import os
import shutil
import tempfile
import time
from pathlib import Path

import _setup
from django.core.management import call_command
from django.db import connection
from django.test import override_settings

from ops.backups.services import backup_create, backup_verify
from tests.s3server import BUCKET, CREDENTIALS, s3_server_start, s3_server_stop, s3_storage


def fill(mb: int) -> None:
    with connection.cursor() as cursor:
        cursor.execute("CREATE TABLE IF NOT EXISTS bench_payload (payload BLOB)")
        for i in range(mb):
            chunk = os.urandom(1 << 20) if i % 2 else (b"guildhall timer cookie command " * 34000)[: 1 << 20]
            cursor.execute("INSERT INTO bench_payload (payload) VALUES (%s)", [chunk])


def timed(step) -> tuple[float, object]:
    started = time.perf_counter()
    result = step()
    return time.perf_counter() - started, result


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--mb", type=int, default=64, help="MiB of rows in the database (default 64)")
    args = parser.parse_args()
    if connection.vendor != "sqlite":
        raise SystemExit("run it on the embedded SQLite default (unset DATABASE_URL)")
    call_command("migrate", verbosity=0)
    fill(args.mb)
    os.environ.update(CREDENTIALS)
    rows = []
    work = tempfile.mkdtemp(prefix="guildhall-bench-")
    try:
        with override_settings(BACKUP_DIR=Path(work) / "backups"):
            made_s, local = timed(lambda: backup_create(kind="scheduled", origin="bench"))
            verify_s, _ = timed(lambda: backup_verify(name=local.name))
            rows.append(["BACKUP_DIR", f"{local.size / 2**20:.1f}", f"{made_s:.2f}", f"{verify_s:.2f}"])
            gz = Path(work) / "backups" / local.name
            server = s3_server_start(Path(work) / "moto.log")
            try:
                client = server.client()
                up_s, _ = timed(lambda: client.upload_file(str(gz), BUCKET, "baseline/file.gz"))
                down_s, _ = timed(lambda: client.download_file(BUCKET, "baseline/file.gz", str(Path(work) / "down.gz")))
                rows.append(
                    ["boto3 upload_file / download_file (baseline)", f"{local.size / 2**20:.1f}", f"{up_s:.2f}", f"{down_s:.2f}"]
                )
                with override_settings(STORAGES={"dbbackup": s3_storage(server.endpoint, "bench")}):
                    made_s, remote = timed(lambda: backup_create(kind="manual", origin="bench"))
                    verify_s, _ = timed(lambda: backup_verify(name=remote.name))
                rows.append(["S3 (moto, loopback)", f"{remote.size / 2**20:.1f}", f"{made_s:.2f}", f"{verify_s:.2f}"])
            finally:
                s3_server_stop(server.process)
    finally:
        shutil.rmtree(work, ignore_errors=True)
    _setup.print_table(
        f"Backups, {args.mb} MiB of rows ({_setup.machine()})",
        ["kept in", "gzip MiB", "backup_create s (upload s)", "backup_verify s (download s)"],
        rows,
    )


if __name__ == "__main__":
    main()
