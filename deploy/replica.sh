#!/usr/bin/env bash
# A PostgreSQL streaming replica made with `pg_basebackup -R` (see docs/scaling.md, "Read replica").
set -euo pipefail

usage() {
    cat <<'EOF'
Usage: deploy/replica.sh pair    --dir DIR --primary-port N --replica-port N [options]
       deploy/replica.sh replica --dir DIR --port N --primary-host HOST --primary-port N [options]
       deploy/replica.sh down    --dir DIR
       deploy/replica.sh up      --dir DIR
       deploy/replica.sh status  --dir DIR
       deploy/replica.sh stop    --dir DIR

pair     makes a primary and its replica under DIR: initdb a primary in DIR/primary (its own
         pg_hba.conf trusts loopback clients and has a replication line), starts it on
         127.0.0.1:--primary-port, then makes the replica from it as `replica` does.
replica  makes a replica of a running primary: `pg_basebackup -R` into DIR/replica (standby.signal
         and primary_conninfo written by pg_basebackup), starts it on 127.0.0.1:--port and waits
         until its WAL receiver streams. The primary must allow the role a replication
         connection (a "host replication ROLE ADDRESS METHOD" line in its pg_hba.conf) and have
         a free WAL sender (max_wal_senders).
down     stops the replica and keeps its data directory (a drill: the replica is gone).
up       starts it again and waits until it streams.
status   prints what DIR holds and whether the replica streams.
stop     stops what this script started in DIR and removes what it made there.

Options:
  --dir DIR              where the data directories, logs and DIR/replica.env go (required)
  --primary-port N       pair: the new primary's port; replica: the given primary's port
  --replica-port N       pair: the replica's port
  --port N               replica: the replica's port
  --primary-host HOST    replica: the primary's host (default 127.0.0.1)
  --primary-user ROLE    replica: the role pg_basebackup and the WAL receiver log in as
                         (default postgres; its password from PGPASSWORD or ~/.pgpass)
  --database NAME        pair: create this database on the primary (it reaches the replica)
  --preload LIBS         pair: shared_preload_libraries of both (e.g. pg_stat_statements)
  --set NAME=VALUE       pair: a postgresql.conf setting of both (repeatable)
  --pg-bin DIR           PostgreSQL programs (default /usr/lib/postgresql/15/bin, else PATH)
  --timeout S            how long to wait for start-up and streaming (default 60)
  -h, --help             this text

Run it as the postgres OS user, or as root: as root the clusters run as the postgres user,
DIR is given to it, and DIR's parent directories must let it through (e.g. a directory in /tmp).
Nothing else is touched: no other cluster is reconfigured or restarted.

On success `pair` and `replica` end with the settings Guildhall reads, ready for an env file:
  DATABASE_URL=postgres://postgres@127.0.0.1:PRIMARY_PORT/NAME          (pair only)
  DATABASE_REPLICA_URL=postgres://postgres@127.0.0.1:REPLICA_PORT/NAME
Exit status: 0 done; 2 bad usage; 1 a step failed (its message says which).

Example (a scratch pair, stopped and removed afterwards):
  deploy/replica.sh pair --dir /tmp/gh-pair --primary-port 5460 --replica-port 5461 --database guildhall
  deploy/replica.sh stop --dir /tmp/gh-pair
EOF
}

die() { echo "replica.sh: $*" >&2; exit 1; }
bad_usage() { echo "replica.sh: $*" >&2; echo "Run with --help for the options." >&2; exit 2; }
step() { echo "==> $*"; }

[[ $# -ge 1 ]] || { usage >&2; exit 2; }
ACTION="$1"
shift
case "$ACTION" in
    -h|--help) usage; exit 0 ;;
    pair|replica|down|up|status|stop) ;;
    *) bad_usage "unknown action: $ACTION (pair, replica, down, up, status or stop)" ;;
esac

DIR="" PRIMARY_PORT="" REPLICA_PORT="" PRIMARY_HOST=127.0.0.1 PRIMARY_USER=postgres DATABASE=""
PRELOAD="" PG_BIN="" TIMEOUT=60
SETTINGS=()
need_value() { [[ $# -ge 2 && -n "$2" ]] || bad_usage "$1 needs a value"; }
while [[ $# -gt 0 ]]; do
    case "$1" in
        -h|--help) usage; exit 0 ;;
        --dir) need_value "$@"; DIR="$2"; shift 2 ;;
        --primary-port) need_value "$@"; PRIMARY_PORT="$2"; shift 2 ;;
        --replica-port|--port) need_value "$@"; REPLICA_PORT="$2"; shift 2 ;;
        --primary-host) need_value "$@"; PRIMARY_HOST="$2"; shift 2 ;;
        --primary-user) need_value "$@"; PRIMARY_USER="$2"; shift 2 ;;
        --database) need_value "$@"; DATABASE="$2"; shift 2 ;;
        --preload) need_value "$@"; PRELOAD="$2"; shift 2 ;;
        --set) need_value "$@"; SETTINGS+=("$2"); shift 2 ;;
        --pg-bin) need_value "$@"; PG_BIN="$2"; shift 2 ;;
        --timeout) need_value "$@"; TIMEOUT="$2"; shift 2 ;;
        *) bad_usage "unknown option: $1" ;;
    esac
done

[[ -n "$DIR" ]] || bad_usage "--dir is required"
[[ "$TIMEOUT" =~ ^[0-9]+$ && "$TIMEOUT" -ge 1 ]] || bad_usage "--timeout must be a whole number of seconds >= 1"
if [[ -z "$PG_BIN" ]]; then
    if [[ -x /usr/lib/postgresql/15/bin/pg_ctl ]]; then
        PG_BIN=/usr/lib/postgresql/15/bin
    else
        PG_BIN="$(dirname "$(command -v pg_ctl || echo /usr/bin/pg_ctl)")"
    fi
fi
[[ -x "$PG_BIN/pg_ctl" && -x "$PG_BIN/pg_basebackup" ]] || die "no pg_ctl/pg_basebackup in $PG_BIN (give --pg-bin)"

STATE="$DIR/replica.env"
OS_USER="$(id -un)"
[[ "$(id -u)" != 0 ]] || OS_USER=postgres
as_pg() {
    if [[ "$(id -un)" == "$OS_USER" ]]; then "$@"; else runuser -u "$OS_USER" -- "$@"; fi
}
port_ok() { [[ "$1" =~ ^[0-9]+$ && "$1" -ge 1 && "$1" -le 65535 ]]; }
sql() {  # sql PORT QUERY: one value, from the database "postgres" on 127.0.0.1
    as_pg "$PG_BIN/psql" -X -At -h 127.0.0.1 -p "$1" -U postgres -d postgres -c "$2"
}

start_cluster() {  # start_cluster DATA PORT LOG
    as_pg "$PG_BIN/pg_ctl" -D "$1" -l "$3" -w -t "$TIMEOUT" \
        -o "-p $2 -c listen_addresses=127.0.0.1 -c unix_socket_directories=''" start >/dev/null \
        || { tail -n 20 "$3" >&2 || true; die "the cluster in $1 did not start on port $2 (log: $3)"; }
}

stop_cluster() {  # stop_cluster DATA: fast shutdown, if running
    if [[ -f "$1/postmaster.pid" ]]; then
        as_pg "$PG_BIN/pg_ctl" -D "$1" -m fast -w -t "$TIMEOUT" stop >/dev/null || die "could not stop the cluster in $1"
    fi
}

wait_streaming() {  # wait until the replica's WAL receiver streams
    local status="" deadline=$((SECONDS + TIMEOUT))
    while ((SECONDS < deadline)); do
        status="$(sql "$REPLICA_PORT" "SELECT status FROM pg_stat_wal_receiver" 2>/dev/null || true)"
        if [[ "$status" == streaming && "$(sql "$REPLICA_PORT" "SELECT pg_is_in_recovery()" 2>/dev/null)" == t ]]; then
            return 0
        fi
        sleep 0.2
    done
    tail -n 20 "$DIR/replica.log" >&2 || true
    die "the replica on port $REPLICA_PORT is not streaming after ${TIMEOUT}s (WAL receiver: ${status:-none}; log: $DIR/replica.log)"
}

make_replica() {
    [[ ! -e "$DIR/replica" ]] || die "$DIR/replica already exists (run \`stop --dir $DIR\` first)"
    step "pg_basebackup -R from $PRIMARY_HOST:$PRIMARY_PORT into $DIR/replica"
    # The WAL receiver's application_name names it in the primary's pg_stat_replication.
    local conninfo="host=$PRIMARY_HOST port=$PRIMARY_PORT user=$PRIMARY_USER application_name=guildhall-replica-wal"
    as_pg env PGPASSWORD="${PGPASSWORD:-}" "$PG_BIN/pg_basebackup" -d "$conninfo" -D "$DIR/replica" \
        -R -X stream -c fast --no-sync >"$DIR/basebackup.log" 2>&1 \
        || { cat "$DIR/basebackup.log" >&2; die "pg_basebackup failed: the primary must allow $PRIMARY_USER a replication connection (pg_hba.conf) and have a free WAL sender"; }
    as_pg chmod 700 "$DIR/replica"
    step "starting the replica on 127.0.0.1:$REPLICA_PORT"
    start_cluster "$DIR/replica" "$REPLICA_PORT" "$DIR/replica.log"
    wait_streaming
}

write_state() {
    {
        echo "MADE_PRIMARY=$1"
        echo "PRIMARY_HOST=$PRIMARY_HOST"
        echo "PRIMARY_PORT=$PRIMARY_PORT"
        echo "REPLICA_PORT=$REPLICA_PORT"
        echo "DATABASE=$DATABASE"
    } >"$STATE"
}

read_state() {
    [[ -f "$STATE" ]] || die "$DIR holds nothing made by this script (no $STATE)"
    # shellcheck disable=SC1090
    source "$STATE"
}

print_urls() {
    local name="${DATABASE:-postgres}"
    [[ "$MADE_PRIMARY" != 1 ]] || echo "DATABASE_URL=postgres://postgres@127.0.0.1:$PRIMARY_PORT/$name"
    echo "DATABASE_REPLICA_URL=postgres://postgres@127.0.0.1:$REPLICA_PORT/$name"
}

prepare_dir() {
    [[ ! -f "$STATE" ]] || die "$DIR already holds a replica (run \`stop --dir $DIR\` first)"
    mkdir -p "$DIR"
    DIR="$(cd "$DIR" && pwd -P)"
    STATE="$DIR/replica.env"
    [[ "$(id -u)" != 0 ]] || chown "$OS_USER" "$DIR"
    as_pg test -w "$DIR" || die "$OS_USER cannot write to $DIR (as root, pick a directory whose parents it can enter)"
}

case "$ACTION" in
    pair)
        port_ok "$PRIMARY_PORT" || bad_usage "pair needs --primary-port N"
        port_ok "$REPLICA_PORT" || bad_usage "pair needs --replica-port N"
        [[ "$PRIMARY_PORT" != "$REPLICA_PORT" ]] || bad_usage "the primary and the replica need different ports"
        [[ -z "$DATABASE" || "$DATABASE" =~ ^[a-z_][a-z0-9_]*$ ]] || bad_usage "--database must be lower-case letters, digits and _"
        for setting in "${SETTINGS[@]}"; do
            [[ "$setting" =~ ^[a-z_.]+=.*$ ]] || bad_usage "--set takes NAME=VALUE (got '$setting')"
        done
        PRIMARY_HOST=127.0.0.1 PRIMARY_USER=postgres
        prepare_dir
        [[ ! -e "$DIR/primary" ]] || die "$DIR/primary already exists"
        write_state 1  # from here on, `stop` removes whatever was made
        step "initdb a primary in $DIR/primary"
        as_pg "$PG_BIN/initdb" -D "$DIR/primary" -U postgres -A trust --no-sync >"$DIR/initdb.log" 2>&1 \
            || { cat "$DIR/initdb.log" >&2; die "initdb failed"; }
        {
            echo "# Written by deploy/replica.sh: loopback clients, and the replica's WAL receiver."
            echo "local all         all                trust"
            echo "host  all         all  127.0.0.1/32  trust"
            echo "host  replication all  127.0.0.1/32  trust"
        } | as_pg tee "$DIR/primary/pg_hba.conf" >/dev/null
        {
            echo "# deploy/replica.sh"
            echo "wal_level = replica"
            echo "max_wal_senders = 5"
            echo "hot_standby = on"
            [[ -z "$PRELOAD" ]] || echo "shared_preload_libraries = '$PRELOAD'"
            for setting in "${SETTINGS[@]}"; do echo "${setting%%=*} = '${setting#*=}'"; done
        } | as_pg tee -a "$DIR/primary/postgresql.conf" >/dev/null
        step "starting the primary on 127.0.0.1:$PRIMARY_PORT"
        start_cluster "$DIR/primary" "$PRIMARY_PORT" "$DIR/primary.log"
        if [[ -n "$DATABASE" ]]; then
            sql "$PRIMARY_PORT" "CREATE DATABASE $DATABASE" >/dev/null || die "could not create database $DATABASE"
        fi
        make_replica
        step "the replica on port $REPLICA_PORT streams from the primary on port $PRIMARY_PORT"
        MADE_PRIMARY=1 print_urls
        ;;
    replica)
        port_ok "$PRIMARY_PORT" || bad_usage "replica needs --primary-port N (the running primary's)"
        port_ok "$REPLICA_PORT" || bad_usage "replica needs --port N (the replica's)"
        prepare_dir
        write_state 0
        make_replica
        step "the replica on port $REPLICA_PORT streams from $PRIMARY_HOST:$PRIMARY_PORT"
        MADE_PRIMARY=0 print_urls
        ;;
    down)
        read_state
        step "stopping the replica on port $REPLICA_PORT (its data is kept; \`up\` starts it again)"
        stop_cluster "$DIR/replica"
        ;;
    up)
        read_state
        [[ -d "$DIR/replica" ]] || die "$DIR/replica is gone"
        if [[ ! -f "$DIR/replica/postmaster.pid" ]]; then
            step "starting the replica on 127.0.0.1:$REPLICA_PORT"
            start_cluster "$DIR/replica" "$REPLICA_PORT" "$DIR/replica.log"
        fi
        wait_streaming
        step "the replica on port $REPLICA_PORT streams"
        ;;
    status)
        read_state
        echo "primary: $PRIMARY_HOST:$PRIMARY_PORT ($([[ "$MADE_PRIMARY" == 1 ]] && echo "made here, $DIR/primary" || echo "given"))"
        echo "replica: 127.0.0.1:$REPLICA_PORT ($DIR/replica)"
        echo "WAL receiver: $(sql "$REPLICA_PORT" "SELECT status FROM pg_stat_wal_receiver" 2>/dev/null || echo "not running")"
        print_urls
        ;;
    stop)
        [[ -d "$DIR" ]] || { echo "replica.sh: $DIR does not exist: nothing to stop"; exit 0; }
        read_state
        step "stopping and removing what deploy/replica.sh made in $DIR"
        stop_cluster "$DIR/replica"
        [[ "$MADE_PRIMARY" != 1 ]] || stop_cluster "$DIR/primary"
        rm -rf "$DIR/replica" "$DIR/replica.log" "$DIR/basebackup.log"
        [[ "$MADE_PRIMARY" != 1 ]] || rm -rf "$DIR/primary" "$DIR/primary.log" "$DIR/initdb.log"
        rm -f "$STATE"
        rmdir "$DIR" 2>/dev/null || true  # only when nothing else is in it
        ;;
esac
