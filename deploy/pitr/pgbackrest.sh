#!/usr/bin/env bash
# Configure a PostgreSQL cluster for point-in-time recovery with pgBackRest: write the
# pgbackrest.conf, turn on WAL archiving, restart the cluster, create the stanza and check it.
# Run `deploy/pitr/pgbackrest.sh --help` for the options.
set -euo pipefail

usage() {
    cat <<'EOF'
Usage: deploy/pitr/pgbackrest.sh --pgdata DIR [options]

Configures a running PostgreSQL cluster for point-in-time recovery with pgBackRest:
  1. writes a pgbackrest.conf (one stanza; a local repository directory, or an S3 bucket),
  2. sets archive_mode=on, archive_command='pgbackrest --config=CONF --stanza=NAME archive-push %p'
     and archive_timeout with ALTER SYSTEM,
  3. restarts the cluster (archive_mode needs a restart),
  4. runs `pgbackrest stanza-create` and `pgbackrest check` (a WAL switch that must reach the
     repository).
It takes no backup: run `manage.py pitr_backup --type full` (or `pgbackrest backup`) next.
Safe to run again: the same options give the same configuration and the stanza is kept.

The cluster must be running. Run this script as the cluster's OS user or as root: as root,
pgbackrest, psql and pg_ctl run as the owner of the data directory (runuser), and the
configuration, log and lock directories are given to that owner.

Cluster:
  --pgdata DIR            data directory of the cluster (required)
  --port N                its port (default: read from DIR/postmaster.pid)
  --socket-dir DIR        its Unix socket directory (default: read from DIR/postmaster.pid)
  --pg-user NAME          database superuser pgBackRest connects as (default: the OS user)
  --pg-bin DIR            PostgreSQL programs (default: /usr/lib/postgresql/<version>/bin)
  --server-log FILE       server log for the restart (default: DIR/server.log)
  --restart-command CMD   restart with CMD instead of `pg_ctl restart` (e.g. a systemctl unit)
  --archive-timeout SECS  PostgreSQL archive_timeout: the longest a finished write waits before
                          its WAL segment is archived, i.e. the RPO bound when idle (default 60)

pgBackRest:
  --stanza NAME           stanza name (default guildhall)
  --config FILE           pgbackrest.conf to write (default /etc/pgbackrest/NAME.conf)
  --repo-path DIR         repository: a local directory (default /var/lib/pgbackrest),
                          or the path prefix inside the bucket with --s3-bucket
  --log-path DIR          pgBackRest's log directory (default /var/log/pgbackrest)
  --lock-path DIR         pgBackRest's lock directory (default /tmp/pgbackrest)
  --retention-full N      full backups kept (with their differentials and WAL; default 2)
  --retention-diff N      differential backups kept (default 7)

S3 repository (the same store BACKUP_STORAGE_URL names; any of these turns S3 on):
  --s3-bucket NAME        bucket
  --s3-endpoint HOST      endpoint host[:port] (default s3.amazonaws.com; pgBackRest speaks HTTPS only)
  --s3-region NAME        region (default $AWS_DEFAULT_REGION or us-east-1)
  --s3-key KEY            access key (default $AWS_ACCESS_KEY_ID)
  --s3-key-secret SECRET  secret key (default $AWS_SECRET_ACCESS_KEY)
  --s3-uri-style host|path  (default host; path for most self-hosted stores)
  --s3-no-verify-tls      do not verify the endpoint's certificate (self-signed test stores)

  -h, --help              this text

On success the last two lines are the settings Guildhall reads, ready for an env file or eval:
  PITR_PGBACKREST_STANZA=NAME
  PITR_PGBACKREST_CONFIG=FILE
Exit status: 0 configured and checked; 2 bad usage; anything else, the step that failed says why.

Example (a scratch cluster on port 5441, repository beside it):
  deploy/pitr/pgbackrest.sh --pgdata /tmp/pg/data --stanza demo --config /tmp/pg/pgbackrest.conf \
      --repo-path /tmp/pg/repo --log-path /tmp/pg/log --lock-path /tmp/pg/lock --archive-timeout 10
EOF
}

die() { echo "pgbackrest.sh: $*" >&2; exit 1; }
bad_usage() { echo "pgbackrest.sh: $*" >&2; echo "Run with --help for the options." >&2; exit 2; }
step() { echo "==> $*"; }

PGDATA_DIR="" PORT="" SOCKET_DIR="" PG_USER="" PG_BIN="" SERVER_LOG="" RESTART_COMMAND=""
ARCHIVE_TIMEOUT=60 STANZA=guildhall CONFIG="" REPO_PATH="" LOG_PATH=/var/log/pgbackrest
LOCK_PATH=/tmp/pgbackrest RETENTION_FULL=2 RETENTION_DIFF=7
S3_BUCKET="" S3_ENDPOINT="" S3_REGION="${AWS_DEFAULT_REGION:-us-east-1}" S3_KEY="${AWS_ACCESS_KEY_ID:-}"
S3_KEY_SECRET="${AWS_SECRET_ACCESS_KEY:-}" S3_URI_STYLE=host S3_VERIFY_TLS=y

need_value() { [[ $# -ge 2 && -n "$2" ]] || bad_usage "$1 needs a value"; }
while [[ $# -gt 0 ]]; do
    case "$1" in
        -h|--help) usage; exit 0 ;;
        --pgdata) need_value "$@"; PGDATA_DIR="$2"; shift 2 ;;
        --port) need_value "$@"; PORT="$2"; shift 2 ;;
        --socket-dir) need_value "$@"; SOCKET_DIR="$2"; shift 2 ;;
        --pg-user) need_value "$@"; PG_USER="$2"; shift 2 ;;
        --pg-bin) need_value "$@"; PG_BIN="$2"; shift 2 ;;
        --server-log) need_value "$@"; SERVER_LOG="$2"; shift 2 ;;
        --restart-command) need_value "$@"; RESTART_COMMAND="$2"; shift 2 ;;
        --archive-timeout) need_value "$@"; ARCHIVE_TIMEOUT="$2"; shift 2 ;;
        --stanza) need_value "$@"; STANZA="$2"; shift 2 ;;
        --config) need_value "$@"; CONFIG="$2"; shift 2 ;;
        --repo-path) need_value "$@"; REPO_PATH="$2"; shift 2 ;;
        --log-path) need_value "$@"; LOG_PATH="$2"; shift 2 ;;
        --lock-path) need_value "$@"; LOCK_PATH="$2"; shift 2 ;;
        --retention-full) need_value "$@"; RETENTION_FULL="$2"; shift 2 ;;
        --retention-diff) need_value "$@"; RETENTION_DIFF="$2"; shift 2 ;;
        --s3-bucket) need_value "$@"; S3_BUCKET="$2"; shift 2 ;;
        --s3-endpoint) need_value "$@"; S3_ENDPOINT="$2"; shift 2 ;;
        --s3-region) need_value "$@"; S3_REGION="$2"; shift 2 ;;
        --s3-key) need_value "$@"; S3_KEY="$2"; shift 2 ;;
        --s3-key-secret) need_value "$@"; S3_KEY_SECRET="$2"; shift 2 ;;
        --s3-uri-style) need_value "$@"; S3_URI_STYLE="$2"; shift 2 ;;
        --s3-no-verify-tls) S3_VERIFY_TLS=n; shift ;;
        *) bad_usage "unknown option: $1" ;;
    esac
done

[[ -n "$PGDATA_DIR" ]] || bad_usage "--pgdata is required"
[[ -f "$PGDATA_DIR/PG_VERSION" ]] || bad_usage "$PGDATA_DIR is not a PostgreSQL data directory (no PG_VERSION)"
PGDATA_DIR="$(cd "$PGDATA_DIR" && pwd -P)"
[[ "$STANZA" =~ ^[A-Za-z0-9][A-Za-z0-9_.-]*$ ]] || bad_usage "--stanza must be letters, digits, . _ - (got '$STANZA')"
[[ "$ARCHIVE_TIMEOUT" =~ ^[0-9]+$ && "$ARCHIVE_TIMEOUT" -ge 1 ]] || bad_usage "--archive-timeout must be a whole number of seconds >= 1"
[[ "$RETENTION_FULL" =~ ^[0-9]+$ && "$RETENTION_FULL" -ge 1 ]] || bad_usage "--retention-full must be a whole number >= 1"
[[ "$RETENTION_DIFF" =~ ^[0-9]+$ && "$RETENTION_DIFF" -ge 1 ]] || bad_usage "--retention-diff must be a whole number >= 1"
[[ "$S3_URI_STYLE" == host || "$S3_URI_STYLE" == path ]] || bad_usage "--s3-uri-style is host or path"
command -v pgbackrest >/dev/null || die "pgbackrest is not installed (Debian: apt-get install pgbackrest)"

PID_FILE="$PGDATA_DIR/postmaster.pid"
[[ -f "$PID_FILE" ]] || die "the cluster in $PGDATA_DIR is not running (no postmaster.pid): start it first"
# postmaster.pid: line 4 is the port, line 5 the socket directory.
[[ -n "$PORT" ]] || PORT="$(sed -n 4p "$PID_FILE")"
[[ -n "$SOCKET_DIR" ]] || SOCKET_DIR="$(sed -n 5p "$PID_FILE")"
[[ "$PORT" =~ ^[0-9]+$ ]] || bad_usage "--port must be a number (got '$PORT')"
[[ -n "$SOCKET_DIR" ]] || SOCKET_DIR=/var/run/postgresql

VERSION="$(cat "$PGDATA_DIR/PG_VERSION")"
if [[ -z "$PG_BIN" ]]; then
    if [[ -x "/usr/lib/postgresql/$VERSION/bin/pg_ctl" ]]; then
        PG_BIN="/usr/lib/postgresql/$VERSION/bin"
    else
        PG_BIN="$(dirname "$(command -v pg_ctl || echo /usr/bin/pg_ctl)")"
    fi
fi
[[ -x "$PG_BIN/pg_ctl" && -x "$PG_BIN/psql" ]] || die "no pg_ctl/psql in $PG_BIN (give --pg-bin)"

OWNER="$(stat -c %U "$PGDATA_DIR")"
as_owner() {
    if [[ "$(id -un)" == "$OWNER" ]]; then
        "$@"
    elif [[ "$(id -u)" == 0 ]]; then
        runuser -u "$OWNER" -- "$@"
    else
        die "run this as $OWNER (the owner of $PGDATA_DIR) or as root"
    fi
}
[[ -n "$PG_USER" ]] || PG_USER="$OWNER"
[[ -n "$CONFIG" ]] || CONFIG="/etc/pgbackrest/$STANZA.conf"
[[ -n "$SERVER_LOG" ]] || SERVER_LOG="$PGDATA_DIR/server.log"
if [[ -n "$S3_BUCKET" || -n "$S3_ENDPOINT" ]]; then
    [[ -n "$S3_BUCKET" ]] || bad_usage "--s3-endpoint needs --s3-bucket"
    [[ -n "$S3_KEY" && -n "$S3_KEY_SECRET" ]] || bad_usage "an S3 repository needs --s3-key and --s3-key-secret (or AWS_ACCESS_KEY_ID and AWS_SECRET_ACCESS_KEY)"
    [[ -n "$S3_ENDPOINT" ]] || S3_ENDPOINT=s3.amazonaws.com
    S3_ENDPOINT="${S3_ENDPOINT#https://}"
    [[ "$S3_ENDPOINT" != http://* ]] || bad_usage "pgBackRest reaches S3 over HTTPS only; --s3-endpoint must not be http://"
    [[ -n "$REPO_PATH" ]] || REPO_PATH="/pgbackrest"
    [[ "$REPO_PATH" == /* ]] || REPO_PATH="/$REPO_PATH"
else
    [[ -n "$REPO_PATH" ]] || REPO_PATH=/var/lib/pgbackrest
    REPO_PATH="$(realpath -m "$REPO_PATH")"
    [[ "$REPO_PATH" != "$PGDATA_DIR" && "$REPO_PATH" != "$PGDATA_DIR"/* ]] || bad_usage "the repository must not be inside the data directory"
    mkdir -p "$REPO_PATH"
fi

step "writing $CONFIG (stanza $STANZA, cluster $PGDATA_DIR on port $PORT)"
mkdir -p "$(dirname "$CONFIG")" "$LOG_PATH" "$LOCK_PATH"
umask 077
{
    echo "# Written by deploy/pitr/pgbackrest.sh; run it again rather than editing by hand."
    echo "[global]"
    if [[ -n "$S3_BUCKET" ]]; then
        echo "repo1-type=s3"
        # Small files travel in bundles: a few requests per backup instead of one per relation file.
        echo "repo1-bundle=y"
        echo "repo1-path=$REPO_PATH"
        echo "repo1-s3-bucket=$S3_BUCKET"
        echo "repo1-s3-endpoint=${S3_ENDPOINT%%:*}"
        [[ "$S3_ENDPOINT" != *:* ]] || echo "repo1-storage-port=${S3_ENDPOINT##*:}"
        echo "repo1-s3-region=$S3_REGION"
        echo "repo1-s3-key=$S3_KEY"
        echo "repo1-s3-key-secret=$S3_KEY_SECRET"
        echo "repo1-s3-uri-style=$S3_URI_STYLE"
        echo "repo1-storage-verify-tls=$S3_VERIFY_TLS"
    else
        echo "repo1-path=$REPO_PATH"
    fi
    echo "repo1-retention-full=$RETENTION_FULL"
    echo "repo1-retention-diff=$RETENTION_DIFF"
    echo "log-path=$LOG_PATH"
    echo "lock-path=$LOCK_PATH"
    echo "log-level-console=warn"
    echo "log-level-file=info"
    echo "compress-type=lz4"
    # A backup starts with an immediate checkpoint instead of waiting for the next one.
    echo "start-fast=y"
    echo
    echo "[$STANZA]"
    echo "pg1-path=$PGDATA_DIR"
    echo "pg1-port=$PORT"
    echo "pg1-socket-path=$SOCKET_DIR"
    echo "pg1-user=$PG_USER"
} >"$CONFIG.tmp"
mv "$CONFIG.tmp" "$CONFIG"
umask 022
if [[ "$(id -u)" == 0 ]]; then
    chown "$OWNER" "$CONFIG" "$LOG_PATH" "$LOCK_PATH"
    [[ -n "$S3_BUCKET" ]] || chown "$OWNER" "$REPO_PATH"
fi
chmod 640 "$CONFIG"

step "turning on WAL archiving (archive_timeout ${ARCHIVE_TIMEOUT}s)"
ARCHIVE_COMMAND="pgbackrest --config=$CONFIG --stanza=$STANZA archive-push %p"
psql_run() { as_owner "$PG_BIN/psql" -X -q -v ON_ERROR_STOP=1 -h "$SOCKET_DIR" -p "$PORT" -U "$PG_USER" -d postgres "$@"; }
psql_run -v cmd="$ARCHIVE_COMMAND" -v timeout="${ARCHIVE_TIMEOUT}s" <<'SQL'
ALTER SYSTEM SET archive_mode = 'on';
ALTER SYSTEM SET archive_command = :'cmd';
ALTER SYSTEM SET archive_timeout = :'timeout';
SQL
WAL_LEVEL="$(psql_run -At -c 'SHOW wal_level')"
[[ "$WAL_LEVEL" != minimal ]] || psql_run -c "ALTER SYSTEM SET wal_level = 'replica'"

step "restarting the cluster"
if [[ -n "$RESTART_COMMAND" ]]; then
    bash -c "$RESTART_COMMAND"
else
    # -l: the restarted server must not inherit this script's stdout (a caller reading it would hang).
    as_owner "$PG_BIN/pg_ctl" restart -D "$PGDATA_DIR" -m fast -w -t 120 -l "$SERVER_LOG" >/dev/null
fi
for _ in $(seq 1 60); do
    as_owner "$PG_BIN/pg_isready" -q -h "$SOCKET_DIR" -p "$PORT" && break
    sleep 0.5
done
[[ "$(psql_run -At -c 'SHOW archive_mode')" == on ]] || die "archive_mode is still off after the restart"

pgbr() { as_owner pgbackrest --config="$CONFIG" --stanza="$STANZA" "$@"; }
step "pgbackrest stanza-create"
pgbr stanza-create
step "pgbackrest check (a WAL switch that must reach the repository)"
pgbr check

echo "Configured. Take the first full backup now: manage.py pitr_backup --type full"
echo "PITR_PGBACKREST_STANZA=$STANZA"
echo "PITR_PGBACKREST_CONFIG=$CONFIG"
