"""A real S3-compatible server for the tests: moto's server mode as a subprocess on loopback, over HTTP.

``s3_server`` (one per test session) starts ``python -m moto.server`` on a free port and
creates a bucket; ``s3_backups`` points ``STORAGES["dbbackup"]`` at a prefix of its own in
that bucket, through the same settings code a deployment uses. ``CuttingProxy`` sits
between the client and the server and cuts every connection once a number of request
bytes have gone through (and refuses new ones until healed): a store going away in the
middle of an upload, for real.
"""

from __future__ import annotations

import contextlib
import socket
import struct
import subprocess
import sys
import threading
import time
import urllib.request
import uuid
from dataclasses import dataclass
from pathlib import Path

import pytest

BUCKET = "guildhall-backups"
CREDENTIALS = {
    "AWS_ACCESS_KEY_ID": "guildhall-test",
    "AWS_SECRET_ACCESS_KEY": "guildhall-test-secret",
    "AWS_DEFAULT_REGION": "us-east-1",
}


def free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return probe.getsockname()[1]


@dataclass
class S3Server:
    process: subprocess.Popen
    endpoint: str
    bucket: str = BUCKET

    def client(self):
        import boto3

        return boto3.client(
            "s3",
            endpoint_url=self.endpoint,
            aws_access_key_id=CREDENTIALS["AWS_ACCESS_KEY_ID"],
            aws_secret_access_key=CREDENTIALS["AWS_SECRET_ACCESS_KEY"],
            region_name=CREDENTIALS["AWS_DEFAULT_REGION"],
        )

    def keys(self, prefix: str) -> list[str]:
        found = self.client().list_objects_v2(Bucket=self.bucket, Prefix=prefix)
        return sorted(item["Key"] for item in found.get("Contents", ()))

    def uploads(self, prefix: str) -> list[str]:
        found = self.client().list_multipart_uploads(Bucket=self.bucket, Prefix=prefix)
        return sorted(item["Key"] for item in found.get("Uploads", ()))


def s3_server_start(log: Path) -> S3Server:
    port = free_port()
    with open(log, "wb") as out:
        process = subprocess.Popen(
            [sys.executable, "-m", "moto.server", "-H", "127.0.0.1", "-p", str(port)], stdout=out, stderr=subprocess.STDOUT
        )
    endpoint = f"http://127.0.0.1:{port}"
    deadline = time.monotonic() + 30
    while True:
        try:
            with urllib.request.urlopen(f"{endpoint}/moto-api/", timeout=1):
                break
        except OSError:
            if process.poll() is not None or time.monotonic() > deadline:
                s3_server_stop(process)
                raise RuntimeError(f"moto's S3 server did not start: {log.read_text()[-2000:]}") from None
            time.sleep(0.1)
    server = S3Server(process=process, endpoint=endpoint)
    server.client().create_bucket(Bucket=BUCKET)
    return server


def s3_server_stop(process: subprocess.Popen) -> None:
    process.terminate()
    try:
        process.wait(timeout=10)
    except subprocess.TimeoutExpired:
        process.kill()
        process.wait(timeout=10)


@pytest.fixture(scope="session")
def s3_server(tmp_path_factory):
    server = s3_server_start(tmp_path_factory.mktemp("moto") / "moto.log")
    try:
        yield server
    finally:
        s3_server_stop(server.process)


def s3_storage(endpoint: str, prefix: str, **transfer) -> dict:
    """``STORAGES["dbbackup"]`` for a prefix of the test bucket, from the settings' own parser."""
    from config.backup_storage import s3_storage_from_url

    entry = s3_storage_from_url(f"s3://{BUCKET}/{prefix}", endpoint_url=endpoint, retries=1, timeout=5)
    if transfer:
        from boto3.s3.transfer import TransferConfig

        entry["OPTIONS"]["transfer_config"] = TransferConfig(**transfer)
    return entry


@dataclass
class S3Backups:
    server: S3Server
    prefix: str

    def names(self) -> list[str]:
        """The keys under this test's prefix, without the prefix."""
        return [key.removeprefix(self.prefix + "/") for key in self.server.keys(self.prefix + "/")]


@pytest.fixture
def s3_backups(s3_server, settings, monkeypatch, tmp_path):
    """Backups in a prefix of their own in the test bucket (BACKUP_DIR still set: locks live there)."""
    for name, value in CREDENTIALS.items():
        monkeypatch.setenv(name, value)
    monkeypatch.setenv("AWS_CONFIG_FILE", str(tmp_path / "no-aws-config"))
    monkeypatch.setenv("AWS_SHARED_CREDENTIALS_FILE", str(tmp_path / "no-aws-credentials"))
    prefix = f"t-{uuid.uuid4().hex[:12]}"
    settings.BACKUP_DIR = tmp_path / "backups"
    settings.BACKUP_STORAGE_URL = f"s3://{BUCKET}/{prefix}"
    settings.STORAGES = {**settings.STORAGES, "dbbackup": s3_storage(s3_server.endpoint, prefix)}
    return S3Backups(server=s3_server, prefix=prefix)


class CuttingProxy:
    """A TCP relay to ``port`` on loopback that can cut all its connections after N request bytes."""

    def __init__(self, port: int) -> None:
        self.target = port
        self._listener = socket.create_server(("127.0.0.1", 0))
        self.port = self._listener.getsockname()[1]
        self._lock = threading.Lock()
        self._sockets: set[socket.socket] = set()
        self._budget: int | None = None
        self._sent = 0
        self.down = False
        self.cut_at: int | None = None
        self._closed = False
        threading.Thread(target=self._accept, daemon=True).start()

    @property
    def endpoint(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    def cut_after(self, nbytes: int) -> None:
        """Cut every connection once ``nbytes`` more request bytes have passed, and refuse new ones."""
        with self._lock:
            self._budget, self._sent = nbytes, 0

    def heal(self) -> None:
        with self._lock:
            self._budget, self.down = None, False

    def close(self) -> None:
        self._closed = True
        self._listener.close()
        self._cut()

    def _accept(self) -> None:
        while not self._closed:
            try:
                client, _ = self._listener.accept()
            except OSError:
                return
            if self.down:
                _reset(client)
                continue
            try:
                upstream = socket.create_connection(("127.0.0.1", self.target))
            except OSError:
                _reset(client)
                continue
            with self._lock:
                self._sockets |= {client, upstream}
            threading.Thread(target=self._pump, args=(client, upstream, True), daemon=True).start()
            threading.Thread(target=self._pump, args=(upstream, client, False), daemon=True).start()

    def _pump(self, source: socket.socket, target: socket.socket, request: bool) -> None:
        with contextlib.suppress(OSError):
            while data := source.recv(1 << 16):
                if request and self._spend(len(data)):
                    self._cut()
                    return
                target.sendall(data)
        with contextlib.suppress(OSError):
            target.shutdown(socket.SHUT_WR)

    def _spend(self, nbytes: int) -> bool:
        with self._lock:
            if self._budget is None:
                return False
            self._sent += nbytes
            if self._sent <= self._budget:
                return False
            self.down, self.cut_at, self._budget = True, self._sent, None
            return True

    def _cut(self) -> None:
        with self._lock:
            doomed, self._sockets = self._sockets, set()
        for sock in doomed:
            _reset(sock)


def _reset(sock: socket.socket) -> None:
    """Close with a TCP reset, as a dying server's kernel does."""
    with contextlib.suppress(OSError):
        sock.setsockopt(socket.SOL_SOCKET, socket.SO_LINGER, struct.pack("ii", 1, 0))
    with contextlib.suppress(OSError):
        sock.close()


@pytest.fixture
def cutting_proxy(s3_server):
    proxy = CuttingProxy(int(s3_server.endpoint.rsplit(":", 1)[1]))
    try:
        yield proxy
    finally:
        proxy.close()
