"""Guildhall settings: everything comes from the environment (see README's table).

The defaults are the embedded setup: one SQLite file under ``data/``, a file cache that
the local processes share, and django-q2 on the ORM broker. ``DATABASE_URL`` and
``REDIS_URL`` move it to PostgreSQL and Redis without a code change.
"""

from __future__ import annotations

import secrets
from pathlib import Path
from typing import Any

import dj_database_url
from django.core.exceptions import ImproperlyConfigured

from config.backup_storage import LOCAL_BACKEND as LOCAL_BACKUP_STORAGE
from config.backup_storage import s3_storage_from_url
from config.env import envbool, envfloat, envint, envlist, envstr

BASE_DIR = Path(__file__).resolve().parent.parent
DATA_DIR = Path(envstr("GUILDHALL_DATA_DIR", str(BASE_DIR / "data")))
DATA_DIR.mkdir(parents=True, exist_ok=True)

DEBUG = envbool("DEBUG", True)


def _secret_key() -> str:
    key = envstr("SECRET_KEY")
    if key:
        return key
    if not DEBUG:
        raise ImproperlyConfigured("SECRET_KEY must be set when DEBUG is off")
    # The embedded default: generate once, keep it beside the data so sessions survive restarts.
    path = DATA_DIR / "secret_key"
    if not path.exists():
        path.write_text(secrets.token_urlsafe(50))
        path.chmod(0o600)
    return path.read_text().strip()


SECRET_KEY = _secret_key()
ALLOWED_HOSTS = envlist("ALLOWED_HOSTS", ["localhost", "127.0.0.1", "[::1]"])
CSRF_TRUSTED_ORIGINS = envlist("CSRF_TRUSTED_ORIGINS", [])

INSTALLED_APPS = [
    "django.contrib.admin",
    "django.contrib.auth",
    "django.contrib.contenttypes",
    "django.contrib.sessions",
    "django.contrib.messages",
    "whitenoise.runserver_nostatic",
    "django.contrib.staticfiles",
    "django_prometheus",
    "axes",
    "csp",
    "dbbackup",
    "django_q",
    "ninja",  # serves the API docs' assets locally (the CSP allows no CDN)
    "guilds",
    "commands",
    "timers",
    "bots",
    "ops",
]

MIDDLEWARE = [
    "django_prometheus.middleware.PrometheusBeforeMiddleware",
    "django.middleware.security.SecurityMiddleware",
    "whitenoise.middleware.WhiteNoiseMiddleware",
    "django.contrib.sessions.middleware.SessionMiddleware",
    "django.middleware.common.CommonMiddleware",
    "django.middleware.csrf.CsrfViewMiddleware",
    "django.contrib.auth.middleware.AuthenticationMiddleware",
    "config.web_actor.WebActorMiddleware",
    "django.contrib.messages.middleware.MessageMiddleware",
    "config.query_guard.QueryGuard",
    "django.middleware.clickjacking.XFrameOptionsMiddleware",
    "csp.middleware.CSPMiddleware",
    # Last, as django-axes asks: it turns a locked-out login into its lockout response.
    "axes.middleware.AxesMiddleware",
    "django_prometheus.middleware.PrometheusAfterMiddleware",
]

AUTHENTICATION_BACKENDS = [
    "axes.backends.AxesStandaloneBackend",  # throttles failed logins first
    "django.contrib.auth.backends.ModelBackend",
]
# Lock-out per account and address (LOGIN_FAILURE_LIMIT), and per address alone at a higher
# limit, so that one address cycling through usernames is stopped too (config/login_lockout.py).
LOGIN_FAILURE_LIMIT = envint("LOGIN_FAILURE_LIMIT", 5, minimum=1)
LOGIN_FAILURE_LIMIT_PER_ADDRESS = envint("LOGIN_FAILURE_LIMIT_PER_ADDRESS", 20, minimum=1)
if LOGIN_FAILURE_LIMIT_PER_ADDRESS < LOGIN_FAILURE_LIMIT:
    raise ImproperlyConfigured("LOGIN_FAILURE_LIMIT_PER_ADDRESS must be at least LOGIN_FAILURE_LIMIT")
AXES_FAILURE_LIMIT = "config.login_lockout.login_failure_limit"
AXES_COOLOFF_TIME = envint("LOGIN_COOLOFF_MINUTES", 15, minimum=1) / 60  # hours
AXES_LOCKOUT_PARAMETERS = [["username", "ip_address"], "ip_address"]
AXES_RESET_ON_SUCCESS = True
AXES_VERBOSE = False
# Behind N trusted reverse proxies (a TLS-terminating load balancer is 1), each appending
# the address it saw to X-Forwarded-For, the client is the N-th entry from the right; what
# a client writes further left is ignored. With 0, REMOTE_ADDR is the client and the header,
# which anyone can send, is not read at all.
TRUSTED_PROXY_COUNT = envint("TRUSTED_PROXY_COUNT", 0, minimum=0)
if TRUSTED_PROXY_COUNT:
    # ipware counts the proxies listed in the header: all but the one that connected to us.
    AXES_IPWARE_PROXY_COUNT = TRUSTED_PROXY_COUNT - 1
    AXES_IPWARE_PROXY_ORDER = "left-most"
    AXES_IPWARE_META_PRECEDENCE_ORDER: tuple[str, ...] = ("HTTP_X_FORWARDED_FOR", "REMOTE_ADDR")
    IPWARE_STRICT = False  # a client's own X-Forwarded-For entries make the chain longer, not invalid
else:
    AXES_IPWARE_META_PRECEDENCE_ORDER = ("REMOTE_ADDR",)

ROOT_URLCONF = "config.urls"
WSGI_APPLICATION = "config.wsgi.application"
ASGI_APPLICATION = "config.asgi.application"

TEMPLATES = [
    {
        "BACKEND": "django.template.backends.django.DjangoTemplates",
        "DIRS": [BASE_DIR / "templates"],
        "APP_DIRS": True,
        "OPTIONS": {
            "context_processors": [
                "django.template.context_processors.request",
                "django.contrib.auth.context_processors.auth",
                "django.contrib.messages.context_processors.messages",
            ],
        },
    },
]

# --- Database ---------------------------------------------------------------------
SLOW_QUERY_MS = envint("SLOW_QUERY_MS", 100, minimum=0)
DB_POOL_MIN = envint("DB_POOL_MIN", 2, minimum=0)
DB_POOL_MAX = envint("DB_POOL_MAX", 10, minimum=1)
# Seconds a request waits for a pooled connection before it fails (a 503 page, config/db_unavailable.py):
# with the database away every request would otherwise hang this long.
DB_POOL_TIMEOUT = envint("DB_POOL_TIMEOUT", 3, minimum=1)
DB_STATEMENT_TIMEOUT_MS = envint("DB_STATEMENT_TIMEOUT_MS", 30_000, minimum=0)
SQLITE_BUSY_TIMEOUT_S = envint("SQLITE_BUSY_TIMEOUT_S", 20, minimum=1)
SQLITE_PATH = DATA_DIR / "guildhall.sqlite3"


def _parse_database_url(var: str, url: str) -> dict:
    try:
        config = dj_database_url.parse(url)
    except Exception as exc:  # dj-database-url raises several types for bad URLs
        raise ImproperlyConfigured(f"{var} is not a valid database URL: {exc}") from None
    engine = config.get("ENGINE", "")
    if engine not in ("django.db.backends.postgresql", "django.db.backends.sqlite3"):
        raise ImproperlyConfigured(f"{var} must be a postgres:// or sqlite:// URL, not {engine or url!r}")
    if engine == "django.db.backends.postgresql" and not config.get("NAME"):
        raise ImproperlyConfigured(f"{var} must name a database (postgres://user@host:port/NAME)")
    return dict(config)


def _postgres(config: dict) -> dict:
    config["CONN_MAX_AGE"] = 0  # the pool owns connection lifetime
    config["CONN_HEALTH_CHECKS"] = True
    options = config.setdefault("OPTIONS", {})
    options["pool"] = {"min_size": DB_POOL_MIN, "max_size": DB_POOL_MAX, "timeout": DB_POOL_TIMEOUT}
    options["options"] = f"-c statement_timeout={DB_STATEMENT_TIMEOUT_MS}"
    options.setdefault("application_name", "guildhall")
    return config


def _sqlite(path: str | Path) -> dict:
    return {
        "ENGINE": "django.db.backends.sqlite3",
        "NAME": str(path),
        # A local file: keep the connection (re-opening re-runs the PRAGMAs on every request).
        "CONN_MAX_AGE": None,
        "CONN_HEALTH_CHECKS": True,
        "OPTIONS": {
            # Writers take the lock when they begin, so a read-then-write transaction never
            # fails half way with "database is locked"; the busy timeout makes them queue.
            "transaction_mode": "IMMEDIATE",
            "timeout": SQLITE_BUSY_TIMEOUT_S,
            "init_command": "PRAGMA journal_mode=WAL;PRAGMA synchronous=NORMAL",
        },
        "TEST": {"NAME": str(DATA_DIR / "test_guildhall.sqlite3")},
    }


_database_url = envstr("DATABASE_URL")
if _database_url:
    _default = _parse_database_url("DATABASE_URL", _database_url)
    _default = _postgres(_default) if _default["ENGINE"].endswith("postgresql") else _sqlite(_default["NAME"])
else:
    _default = _sqlite(SQLITE_PATH)
DATABASES = {"default": _default}

_replica_url = envstr("DATABASE_REPLICA_URL")
if _replica_url:
    _replica = _parse_database_url("DATABASE_REPLICA_URL", _replica_url)
    _replica = _postgres(_replica) if _replica["ENGINE"].endswith("postgresql") else _sqlite(_replica["NAME"])
    _replica["TEST"] = {"MIRROR": "default"}
    DATABASES["replica"] = _replica

DEFAULT_AUTO_FIELD = "django.db.models.BigAutoField"

# --- Connection pooler --------------------------------------------------------------
# DATABASE_POOLER=pgbouncer: DATABASE_URL points at PgBouncer in transaction pooling mode
# (deploy/pgbouncer.sh), which hands a server connection to a client for one transaction only.
# So: no pool of our own (PgBouncer is the pool), no server-side cursors (a named cursor lives
# in the session), no prepared statements (psycopg prepares a query after 5 runs; PgBouncer
# 1.18 may run the next one on another server), no startup `options` (PgBouncer refuses them:
# the statement timeout is the server's default for the pooled connections, set by
# deploy/pgbouncer.sh from DB_STATEMENT_TIMEOUT_MS), and backups (pg_dump, psql) go straight to
# PostgreSQL at DATABASE_DIRECT_URL, since pg_dump's session SETs would leak into the pool.
DATABASE_POOLER = envstr("DATABASE_POOLER").lower()
if DATABASE_POOLER not in ("", "pgbouncer"):
    raise ImproperlyConfigured(f"DATABASE_POOLER must be pgbouncer or unset, not {DATABASE_POOLER!r}")
if DATABASE_POOLER and DATABASES["default"]["ENGINE"].endswith("postgresql"):
    _direct_url = envstr("DATABASE_DIRECT_URL")
    if not _direct_url:
        raise ImproperlyConfigured("DATABASE_POOLER=pgbouncer needs DATABASE_DIRECT_URL (PostgreSQL itself, for backups)")
    _direct = _parse_database_url("DATABASE_DIRECT_URL", _direct_url)
    _pooled = DATABASES["default"]
    _pooled["OPTIONS"].pop("pool", None)
    _pooled["OPTIONS"].pop("options", None)
    _pooled["OPTIONS"]["prepare_threshold"] = None
    _pooled["OPTIONS"]["connect_timeout"] = envint("DB_CONNECT_TIMEOUT", 5, minimum=1)
    _pooled["DISABLE_SERVER_SIDE_CURSORS"] = True
    # A client connection to PgBouncer holds no server connection between transactions: keep it.
    _pooled["CONN_MAX_AGE"] = envint("DB_CONN_MAX_AGE", 60, minimum=0)
    DBBACKUP_CONNECTORS = {
        "default": {key: _direct[key] for key in ("HOST", "PORT", "USER", "PASSWORD") if _direct.get(key)},
    }
# With or without a pooler: while the database is away, pages and the API answer a 503 at once
# rather than waiting for a connection (config/db_unavailable.py); outside the session middleware.
MIDDLEWARE.insert(
    MIDDLEWARE.index("django.contrib.sessions.middleware.SessionMiddleware"), "config.db_unavailable.DatabaseUnavailable"
)

# --- Read replica -------------------------------------------------------------------
# DATABASE_REPLICA_URL (a streaming replica, deploy/replica.sh) serves the reads that tolerate
# lag while it answers and is at most REPLICA_MAX_LAG_S behind; otherwise they fall back to the
# primary by themselves, checked at most every REPLICA_CHECK_INTERVAL_S per process
# (config/replicas.py). Tests keep the replica alias as a mirror of the default database.
REPLICA_MAX_LAG_S = envfloat("REPLICA_MAX_LAG_S", 30.0, minimum=0.1)
REPLICA_CHECK_INTERVAL_S = envfloat("REPLICA_CHECK_INTERVAL_S", 5.0, minimum=0.1)
# libpq's connect_timeout counts whole seconds, 2 at the least.
REPLICA_CONNECT_TIMEOUT_S = envint("REPLICA_CONNECT_TIMEOUT_S", 2, minimum=2)
for _alias, _name in (("default", "guildhall-primary"), ("replica", "guildhall-replica")):
    if _alias in DATABASES and DATABASES[_alias]["ENGINE"].endswith("postgresql"):
        DATABASES[_alias]["OPTIONS"]["application_name"] = _name  # who ran what, in pg_stat_activity
if "replica" in DATABASES and DATABASES["replica"]["ENGINE"].endswith("postgresql"):
    # Plain persistent connections with a short connect timeout: a pool would keep a request
    # waiting up to DB_POOL_TIMEOUT for a replica that is down.
    DATABASES["replica"]["OPTIONS"].pop("pool", None)
    DATABASES["replica"]["OPTIONS"]["connect_timeout"] = REPLICA_CONNECT_TIMEOUT_S
    DATABASES["replica"]["CONN_MAX_AGE"] = 60
if "replica" in DATABASES:
    DATABASE_ROUTERS = ["config.replicas.ReplicaRouter"]
    _after = "django.contrib.auth.middleware.AuthenticationMiddleware"
    _at = MIDDLEWARE.index(_after) + 1 if _after in MIDDLEWARE else len(MIDDLEWARE)
    MIDDLEWARE.insert(_at, "config.replicas.ReplicaPinMiddleware")

# --- Cache --------------------------------------------------------------------------
REDIS_URL = envstr("REDIS_URL")
if REDIS_URL:
    if not REDIS_URL.startswith(("redis://", "rediss://", "unix://")):
        raise ImproperlyConfigured(f"REDIS_URL must be a redis://, rediss:// or unix:// URL, not {REDIS_URL!r}")
    CACHES = {
        "default": {
            "BACKEND": "django_redis.cache.RedisCache",
            "LOCATION": REDIS_URL,
            "KEY_PREFIX": envstr("CACHE_KEY_PREFIX", "guildhall"),
            "OPTIONS": {"CLIENT_CLASS": "django_redis.client.DefaultClient", "SOCKET_TIMEOUT": 5},
        }
    }
else:
    # A file cache is shared by the web, worker and bot processes on one machine, so an
    # invalidation made by one is seen by the others (per-process memory would not be).
    CACHES = {
        "default": {
            "BACKEND": "django.core.cache.backends.filebased.FileBasedCache",
            "LOCATION": envstr("CACHE_DIR", str(DATA_DIR / "cache")),
            "KEY_PREFIX": envstr("CACHE_KEY_PREFIX", "guildhall"),
            "OPTIONS": {"MAX_ENTRIES": 20_000},
        }
    }

# --- django-q2 ----------------------------------------------------------------------
# The ORM broker acknowledges a task only when it finishes, so a task whose worker was
# killed is handed out again after `retry` seconds; Redis is used for the cache only.
Q_CLUSTER: dict[str, Any] = {
    "name": envstr("Q_CLUSTER_NAME", "guildhall"),
    "orm": "default",
    "workers": envint("Q_WORKERS", 2, minimum=1),
    "timeout": envint("Q_TIMEOUT", 90, minimum=5),
    "retry": envint("Q_RETRY", 120, minimum=10),
    "max_attempts": envint("Q_MAX_ATTEMPTS", 5, minimum=1),
    "catch_up": False,
    "save_limit": 1000,
    "ack_failures": True,
    "poll": 0.5,
    "label": "Task queue",
}
if Q_CLUSTER["timeout"] >= Q_CLUSTER["retry"]:
    raise ImproperlyConfigured("Q_TIMEOUT must be smaller than Q_RETRY, or tasks run twice")
if REDIS_URL:
    Q_CLUSTER["cache"] = "default"

# A sweep worker's claim on due timers; another worker takes them over after this.
SWEEP_LEASE_SECONDS = envint("SWEEP_LEASE_SECONDS", 30, minimum=1)
# A bulk timer job's claim (renewed with each member); a dead worker's job is taken over after it.
BULK_LEASE_SECONDS = envint("BULK_LEASE_SECONDS", 30, minimum=2)
# How often a bulk job's progress message is edited at most (Discord allows 5 edits per 5 s per channel).
BULK_EDIT_SECONDS = envfloat("BULK_EDIT_SECONDS", 2.0, minimum=1.0)
# Timed roles checked against members' real roles: each guild every RECONCILE_HOURS (and when a
# shard becomes ready, if that long has passed), one guild at a time, at most
# RECONCILE_REQUESTS_PER_SECOND member-list pages or role changes a second.
RECONCILE_HOURS = envfloat("RECONCILE_HOURS", 6.0, minimum=0.0)
RECONCILE_REQUESTS_PER_SECOND = envfloat("RECONCILE_REQUESTS_PER_SECOND", 5.0, minimum=0.1)
RECONCILE_PAGE_SIZE = envint("RECONCILE_PAGE_SIZE", 1000, minimum=1, maximum=1000)

# --- Discord and its rate limits (config/settings_discord.py) -------------------------
from config.settings_discord import *  # noqa: E402, F403

# --- Auth, i18n, static -------------------------------------------------------------
AUTH_PASSWORD_VALIDATORS = [
    {"NAME": "django.contrib.auth.password_validation.UserAttributeSimilarityValidator"},
    {"NAME": "django.contrib.auth.password_validation.MinimumLengthValidator"},
    {"NAME": "django.contrib.auth.password_validation.CommonPasswordValidator"},
    {"NAME": "django.contrib.auth.password_validation.NumericPasswordValidator"},
]
LANGUAGE_CODE = "en-us"
TIME_ZONE = "UTC"
USE_I18N = True
USE_TZ = True

STATIC_URL = "static/"
STATIC_ROOT = DATA_DIR / "staticfiles"
STATIC_ROOT.mkdir(exist_ok=True)
STATICFILES_DIRS = [BASE_DIR / "static"]
STORAGES: dict[str, dict[str, Any]] = {
    "default": {"BACKEND": "django.core.files.storage.FileSystemStorage"},
    "staticfiles": {"BACKEND": "whitenoise.storage.CompressedManifestStaticFilesStorage"},
}
if DEBUG:
    STORAGES["staticfiles"] = {"BACKEND": "django.contrib.staticfiles.storage.StaticFilesStorage"}

# --- Security (production when DEBUG is off) ---------------------------------------
CONTENT_SECURITY_POLICY = {
    "DIRECTIVES": {
        "default-src": ["'self'"],
        "script-src": ["'self'"],
        "style-src": ["'self'", "'unsafe-inline'"],  # the admin's inline style attributes
        "img-src": ["'self'", "data:"],
        "object-src": ["'none'"],
        "base-uri": ["'self'"],
        "frame-ancestors": ["'none'"],
        "form-action": ["'self'"],
    }
}
SESSION_COOKIE_HTTPONLY = True
CSRF_COOKIE_HTTPONLY = True
X_FRAME_OPTIONS = "DENY"
SECURE_CONTENT_TYPE_NOSNIFF = True
SECURE_REFERRER_POLICY = "same-origin"
HSTS_PRELOAD_MIN_SECONDS = 31_536_000  # one year: the least hstspreload.org accepts
if not DEBUG:
    SESSION_COOKIE_SECURE = envbool("SESSION_COOKIE_SECURE", True)
    CSRF_COOKIE_SECURE = envbool("CSRF_COOKIE_SECURE", True)
    SECURE_SSL_REDIRECT = envbool("SECURE_SSL_REDIRECT", True)
    SECURE_REDIRECT_EXEMPT = [r"^health(/|$)"]  # platform health probes come over plain http inside
    # HSTS starts at an hour (raise SECURE_HSTS_SECONDS once https is settled); turn
    # SECURE_HSTS_INCLUDE_SUBDOMAINS off when other subdomains still serve plain http. Preload
    # lists refuse a max-age under a year, so preload is sent only from a year on.
    SECURE_HSTS_SECONDS = envint("SECURE_HSTS_SECONDS", 3600, minimum=0)
    SECURE_HSTS_INCLUDE_SUBDOMAINS = envbool("SECURE_HSTS_INCLUDE_SUBDOMAINS", True)
    SECURE_HSTS_PRELOAD = envbool("SECURE_HSTS_PRELOAD", True) and SECURE_HSTS_SECONDS >= HSTS_PRELOAD_MIN_SECONDS
    if not SECURE_HSTS_PRELOAD:
        SILENCED_SYSTEM_CHECKS = ["security.W021"]  # preload is off on purpose (max-age under a year, or chosen)
    SECURE_PROXY_SSL_HEADER = ("HTTP_X_FORWARDED_PROTO", "https")

# --- Backups (django-dbbackup) ------------------------------------------------------
BACKUP_DIR = Path(envstr("BACKUP_DIR", str(DATA_DIR / "backups")))
BACKUP_KEEP_COUNT = envint("BACKUP_KEEP_COUNT", 14, minimum=1)
BACKUP_KEEP_DAYS = envint("BACKUP_KEEP_DAYS", 30, minimum=1)
# Retention (ops.retention): ended timers and old ledger rows are archived under
# BACKUP_DIR/retention/ and then deleted; 0 keeps them forever.
RETENTION_TIMER_DAYS = envint("RETENTION_TIMER_DAYS", 365, minimum=0)
RETENTION_LEDGER_DAYS = envint("RETENTION_LEDGER_DAYS", 0, minimum=0)
# The activity log (guilds.LogEntry) is pruned, not archived: it is a record of what the bot did.
RETENTION_LOG_DAYS = envint("RETENTION_LOG_DAYS", 90, minimum=0)
# BACKUP_DIR as a storage that follows the setting and writes whole, private files only.
STORAGES["dbbackup"] = {"BACKEND": LOCAL_BACKUP_STORAGE}

# --- Off-site backups ---------------------------------------------------------------
# BACKUP_STORAGE_URL=s3://bucket[/prefix] keeps every backup and retention archive in S3,
# or in any S3-compatible store at BACKUP_S3_ENDPOINT_URL, through django-storages (which
# django-dbbackup's commands use too); credentials from AWS_ACCESS_KEY_ID,
# AWS_SECRET_ACCESS_KEY and AWS_DEFAULT_REGION. Unset: BACKUP_DIR, as before.
BACKUP_STORAGE_URL = envstr("BACKUP_STORAGE_URL").strip()
BACKUP_S3_ENDPOINT_URL = envstr("BACKUP_S3_ENDPOINT_URL").strip()
if BACKUP_STORAGE_URL:
    STORAGES["dbbackup"] = s3_storage_from_url(BACKUP_STORAGE_URL, endpoint_url=BACKUP_S3_ENDPOINT_URL)
elif BACKUP_S3_ENDPOINT_URL:
    raise ImproperlyConfigured("BACKUP_S3_ENDPOINT_URL is set but BACKUP_STORAGE_URL is not: set it to s3://bucket/prefix")
DBBACKUP_CONNECTOR_MAPPING = {
    "django.db.backends.sqlite3": "dbbackup.db.sqlite.SqliteBackupConnector",
    "django.db.backends.postgresql": "dbbackup.db.postgresql.PgDumpBinaryConnector",
}

# --- Point-in-time recovery (Litestream) ---------------------------------------------
# The SQLite file streamed to LITESTREAM_REPLICA_URL (file:///dir or s3://bucket/prefix, the S3
# store at BACKUP_S3_ENDPOINT_URL with the AWS_* credentials) by the Procfile's litestream process;
# `manage.py litestream_config` writes its config from these. Empty: off.
LITESTREAM_REPLICA_URL = envstr("LITESTREAM_REPLICA_URL")
if LITESTREAM_REPLICA_URL and not LITESTREAM_REPLICA_URL.startswith(("file:///", "s3://")):
    raise ImproperlyConfigured("LITESTREAM_REPLICA_URL must be file:///absolute/dir or s3://bucket/prefix")
LITESTREAM_S3_ENDPOINT_URL = envstr("BACKUP_S3_ENDPOINT_URL")  # empty: AWS itself
LITESTREAM_S3_REGION = envstr("AWS_REGION", envstr("AWS_DEFAULT_REGION", "us-east-1"))
# How often changes are shipped (the RPO), and how far back a restore can reach.
LITESTREAM_SYNC_INTERVAL_SECONDS = envint("LITESTREAM_SYNC_INTERVAL_SECONDS", 1, minimum=1)
LITESTREAM_RETENTION_HOURS = envint("LITESTREAM_RETENTION_HOURS", 7 * 24, minimum=1)
LITESTREAM_SNAPSHOT_HOURS = envint("LITESTREAM_SNAPSHOT_HOURS", 24, minimum=1)
LITESTREAM_CONFIG_PATH = DATA_DIR / "litestream.yml"

# --- Point-in-time recovery (pgBackRest) ---------------------------------------------
# deploy/pitr/pgbackrest.sh configures the cluster and prints the first two; off unless the stanza
# is set. The configuration defaults to where the script writes it (/etc/pgbackrest/STANZA.conf).
PITR_PGBACKREST_STANZA = envstr("PITR_PGBACKREST_STANZA")
PITR_PGBACKREST_CONFIG = envstr("PITR_PGBACKREST_CONFIG")
if PITR_PGBACKREST_CONFIG and not PITR_PGBACKREST_STANZA:
    raise ImproperlyConfigured(
        "PITR_PGBACKREST_CONFIG needs PITR_PGBACKREST_STANZA (the stanza deploy/pitr/pgbackrest.sh printed)"
    )
if PITR_PGBACKREST_STANZA and not PITR_PGBACKREST_CONFIG:
    PITR_PGBACKREST_CONFIG = f"/etc/pgbackrest/{PITR_PGBACKREST_STANZA}.conf"
# How pgbackrest is run, e.g. "sudo -n -u postgres pgbackrest" when Guildhall runs as another user
# (as root, Guildhall runs it as the owner of the configuration file by itself).
PITR_PGBACKREST_COMMAND = envstr("PITR_PGBACKREST_COMMAND", "pgbackrest")
# The worker's backup job runs every PITR_PGBACKREST_DIFF_HOURS: a differential, or a full one when
# the newest full backup is PITR_PGBACKREST_FULL_DAYS old (weekly full, daily differential).
PITR_PGBACKREST_FULL_DAYS = envint("PITR_PGBACKREST_FULL_DAYS", 7, minimum=1)
PITR_PGBACKREST_DIFF_HOURS = envint("PITR_PGBACKREST_DIFF_HOURS", 24, minimum=1)

# --- Logging ------------------------------------------------------------------------
LOG_LEVEL = envstr("LOG_LEVEL", "INFO").upper()
if LOG_LEVEL not in ("DEBUG", "INFO", "WARNING", "ERROR", "CRITICAL"):
    raise ImproperlyConfigured(f"LOG_LEVEL must be DEBUG, INFO, WARNING, ERROR or CRITICAL, not {LOG_LEVEL!r}")
LOG_FORMAT = envstr("LOG_FORMAT", "text").lower()
if LOG_FORMAT not in ("text", "json"):
    raise ImproperlyConfigured(f"LOG_FORMAT must be text or json, not {LOG_FORMAT!r}")

LOGGING = {
    "version": 1,
    "disable_existing_loggers": False,
    "formatters": {
        "text": {"format": "%(asctime)s %(levelname)s %(name)s: %(message)s"},
        "json": {
            "()": "pythonjsonlogger.json.JsonFormatter",
            "format": "%(asctime)s %(levelname)s %(name)s %(message)s",
            "rename_fields": {"asctime": "time", "levelname": "level", "name": "logger"},
        },
    },
    "handlers": {"console": {"class": "logging.StreamHandler", "formatter": LOG_FORMAT}},
    "root": {"handlers": ["console"], "level": LOG_LEVEL},
    "loggers": {
        "django.db.backends": {"level": "INFO"},
        "discord": {"level": "WARNING" if LOG_LEVEL != "DEBUG" else "DEBUG"},
    },
}

# Prometheus scrapes /metrics with this bearer token (staff sessions may read it too).
METRICS_TOKEN = envstr("METRICS_TOKEN")

# --- Guildhall ----------------------------------------------------------------------
GUILDHALL_DEFAULT_PREFIX = "!!"
# /health/ready warns, then fails, when the disk under DATA_DIR has less free space than this.
HEALTH_DISK_WARN_PERCENT = envfloat("HEALTH_DISK_WARN_PERCENT", 10.0, minimum=0)
HEALTH_DISK_FAIL_PERCENT = envfloat("HEALTH_DISK_FAIL_PERCENT", 2.0, minimum=0)

# --- Alerts and mail (config/settings_alerts.py) ----------------------------------------
from config.settings_alerts import *  # noqa: E402, F403

# --- The bot process (manage.py runbot): only what it needs (config/settings_bot.py) ---
from config.settings_bot import bot_apps, is_bot_process, leave_out_modules  # noqa: E402

if is_bot_process():
    leave_out_modules()
    INSTALLED_APPS = bot_apps(INSTALLED_APPS)
    MIDDLEWARE = []
    AUTHENTICATION_BACKENDS = ["django.contrib.auth.backends.ModelBackend"]
    ROOT_URLCONF = "config.urls_bot"
