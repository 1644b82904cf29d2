"""Where backups are kept: ``BACKUP_STORAGE_URL=s3://bucket[/prefix]`` read into ``STORAGES["dbbackup"]``.

django-storages' S3 backend does the talking; this only turns the URL into its options and
pins the ones that matter for backups: no ACL header (the objects stay as private as the
bucket; an ACL header is refused by buckets with ACLs disabled), signature v4, path-style
addressing when an endpoint URL names an S3-compatible store (MinIO, Garage, Ceph and
the like rarely serve a bucket per host name), and reads spooled to disk past 8 MiB so a
large backup is never held in memory. Credentials come from boto3's usual chain
(AWS_ACCESS_KEY_ID, AWS_SECRET_ACCESS_KEY, AWS_DEFAULT_REGION, or an instance role).
"""

from __future__ import annotations

import re
from typing import Any
from urllib.parse import urlsplit

from django.core.exceptions import ImproperlyConfigured

S3_BACKEND = "storages.backends.s3.S3Storage"
LOCAL_BACKEND = "ops.backups.storage_local.BackupDirStorage"
SPOOL_BYTES = 8 << 20
# S3's own rule for bucket names (lowercase letters, digits, dots and hyphens; 3 to 63).
_BUCKET = re.compile(r"[a-z0-9][a-z0-9.-]{1,61}[a-z0-9]")
_EXAMPLE = "s3://my-bucket/guildhall"


def s3_storage_from_url(
    url: str, *, endpoint_url: str = "", retries: int = 3, timeout: float = 60.0, variable: str = "BACKUP_STORAGE_URL"
) -> dict[str, Any]:
    """The ``STORAGES["dbbackup"]`` entry for ``s3://bucket[/prefix]``; ImproperlyConfigured saying what is wrong."""
    parts = urlsplit(url.strip())
    if parts.scheme != "s3":
        raise ImproperlyConfigured(f"{variable} must be an s3:// URL such as {_EXAMPLE}, not {url!r}")
    if parts.username or parts.password or "@" in parts.netloc:
        raise ImproperlyConfigured(
            f"{variable} must not hold credentials: set AWS_ACCESS_KEY_ID and AWS_SECRET_ACCESS_KEY instead"
        )
    if parts.query or parts.fragment or ":" in parts.netloc:
        raise ImproperlyConfigured(f"{variable} takes only a bucket and a prefix ({_EXAMPLE}), not {url!r}")
    bucket = parts.netloc
    if not _BUCKET.fullmatch(bucket) or ".." in bucket:
        raise ImproperlyConfigured(
            f"{variable}: {bucket!r} is not a valid bucket name (3 to 63 lowercase letters, digits, dots and hyphens)"
        )
    prefix = parts.path.strip("/")
    if prefix and any(segment in ("", ".", "..") for segment in prefix.split("/")):
        raise ImproperlyConfigured(f"{variable}: the prefix {prefix!r} has an empty, '.' or '..' part")
    endpoint = endpoint_url.strip()
    if endpoint:
        endpoint_parts = urlsplit(endpoint)
        if endpoint_parts.scheme not in ("http", "https") or not endpoint_parts.hostname:
            raise ImproperlyConfigured(
                f"BACKUP_S3_ENDPOINT_URL must be an http(s):// URL such as https://s3.example.com, not {endpoint!r}"
            )
    from botocore.config import Config  # only when off-site copies are configured

    client_config = Config(
        signature_version="s3v4",
        s3={"addressing_style": "path" if endpoint else "auto"},
        retries={"max_attempts": retries, "mode": "standard"},
        connect_timeout=timeout,
        read_timeout=timeout,
    )
    return {
        "BACKEND": S3_BACKEND,
        "OPTIONS": {
            "bucket_name": bucket,
            "location": prefix,
            "endpoint_url": endpoint or None,
            "default_acl": None,
            "querystring_auth": True,
            "file_overwrite": True,  # names are chosen free by the backup code (S3 has no exclusive create)
            "gzip": False,  # backups are gzip files already
            # Without a ContentType, django-storages would tag .gz files Content-Encoding: gzip.
            "object_parameters": {"ContentType": "application/octet-stream"},
            "max_memory_size": SPOOL_BYTES,
            "client_config": client_config,
        },
    }
