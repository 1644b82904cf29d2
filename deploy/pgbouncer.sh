#!/usr/bin/env bash
# PgBouncer in transaction pooling mode in front of one PostgreSQL server (see docs/scaling.md).
set -euo pipefail

usage() {
  cat <<'EOF'
Usage: deploy/pgbouncer.sh start --dir DIR --port PORT [options]
       deploy/pgbouncer.sh stop  --dir DIR
       deploy/pgbouncer.sh status --dir DIR

start writes DIR/pgbouncer.ini (pool_mode = transaction, listening on 127.0.0.1:PORT,
trust for loopback clients named in DIR/users.txt) and starts pgbouncer as a daemon
(pidfile DIR/pgbouncer.pid, log DIR/pgbouncer.log); it waits until the port answers.
stop stops the pgbouncer whose pidfile is in DIR, and waits until it is gone.
As root, pgbouncer runs as the postgres user (it refuses to run as root); DIR is given to it.

Options for start:
  --pg-host HOST            PostgreSQL host (default 127.0.0.1)
  --pg-port PORT            PostgreSQL port (default 5432)
  --db NAME                 the database clients ask for (repeatable); default: every database
                            a client names is sent to the same server ("* =" fallback), which
                            the test run needs (its test database is created at run time)
  --user NAME               a role clients log in as (repeatable; default postgres)
  --pool-size N             server connections per database and user (default 20)
  --max-client-conn N       client connections accepted (default 500)
  --statement-timeout-ms N  the pooled server connections' statement_timeout
                            (default $DB_STATEMENT_TIMEOUT_MS, else 30000; 0 = none)
  --query-wait-timeout S    how long a client waits for a server connection before it gets
                            an error, for instance while PostgreSQL restarts (default 5)
  -h, --help                this text

Point the product at it with DATABASE_URL=postgres://USER@127.0.0.1:PORT/NAME,
DATABASE_POOLER=pgbouncer and DATABASE_DIRECT_URL=postgres://USER@PGHOST:PGPORT/NAME.
EOF
}

die() { echo "pgbouncer.sh: $*" >&2; exit 2; }

[ $# -ge 1 ] || { usage >&2; exit 2; }
action=$1; shift
case "$action" in -h|--help) usage; exit 0 ;; start|stop|status) ;; *) usage >&2; exit 2 ;; esac

dir="" port="" pg_host=127.0.0.1 pg_port=5432 pool_size=20 max_client=500 wait_timeout=5
timeout_ms=${DB_STATEMENT_TIMEOUT_MS:-30000}
dbs=() users=()
while [ $# -gt 0 ]; do
  case "$1" in
    --dir) dir=$2; shift 2 ;;
    --port) port=$2; shift 2 ;;
    --pg-host) pg_host=$2; shift 2 ;;
    --pg-port) pg_port=$2; shift 2 ;;
    --db) dbs+=("$2"); shift 2 ;;
    --user) users+=("$2"); shift 2 ;;
    --pool-size) pool_size=$2; shift 2 ;;
    --max-client-conn) max_client=$2; shift 2 ;;
    --statement-timeout-ms) timeout_ms=$2; shift 2 ;;
    --query-wait-timeout) wait_timeout=$2; shift 2 ;;
    -h|--help) usage; exit 0 ;;
    *) die "unknown option $1 (see --help)" ;;
  esac
done
[ -n "$dir" ] || die "--dir is required"
for n in "$pg_port" "$pool_size" "$max_client" "$timeout_ms" "$wait_timeout" ${port:+"$port"}; do
  [[ "$n" =~ ^[0-9]+$ ]] || die "not a whole number: $n"
done
pidfile="$dir/pgbouncer.pid"

running() { [ -s "$pidfile" ] && kill -0 "$(cat "$pidfile")" 2>/dev/null; }

stop() {
  running || { rm -f "$pidfile"; return 0; }
  local pid; pid=$(cat "$pidfile")
  kill -INT "$pid"  # SIGINT: safe shutdown (SIGTERM waits for every client to leave)
  for _ in $(seq 1 100); do kill -0 "$pid" 2>/dev/null || { rm -f "$pidfile"; return 0; }; sleep 0.1; done
  kill -KILL "$pid" 2>/dev/null || true
  rm -f "$pidfile"
}

start() {
  [ -n "$port" ] || die "--port is required"
  command -v pgbouncer >/dev/null || die "pgbouncer is not installed (apt-get install pgbouncer)"
  running && die "already running (pid $(cat "$pidfile"))"
  mkdir -p "$dir"
  [ ${#users[@]} -gt 0 ] || users=(postgres)
  : >"$dir/users.txt"
  for u in "${users[@]}"; do printf '"%s" ""\n' "$u" >>"$dir/users.txt"; done
  # Every pooled server connection starts with the statement timeout: a session SET made by
  # PgBouncer itself once per server connection, not by a client (which would leak to others).
  local server="host=$pg_host port=$pg_port connect_query='SET statement_timeout = $timeout_ms'"
  {
    echo "[databases]"
    if [ ${#dbs[@]} -eq 0 ]; then
      echo "* = $server"
    else
      for d in "${dbs[@]}"; do echo "$d = $server dbname=$d"; done
    fi
    cat <<EOF
[pgbouncer]
listen_addr = 127.0.0.1
listen_port = $port
unix_socket_dir =
auth_type = trust
auth_file = $dir/users.txt
pool_mode = transaction
default_pool_size = $pool_size
max_client_conn = $max_client
server_reset_query =
server_check_query = select 1
server_check_delay = 10
server_connect_timeout = 2
server_login_retry = 1
query_wait_timeout = $wait_timeout
logfile = $dir/pgbouncer.log
pidfile = $pidfile
admin_users = ${users[0]}
EOF
  } >"$dir/pgbouncer.ini"
  local as=()
  if [ "$(id -u)" -eq 0 ]; then
    chown -R postgres "$dir"
    as=(-u postgres)
  fi
  pgbouncer -d "${as[@]}" "$dir/pgbouncer.ini" || die "pgbouncer did not start: $(tail -5 "$dir/pgbouncer.log" 2>/dev/null)"
  for _ in $(seq 1 50); do
    if running && (exec 3<>"/dev/tcp/127.0.0.1/$port") 2>/dev/null; then
      echo "pgbouncer on 127.0.0.1:$port -> $pg_host:$pg_port (pid $(cat "$pidfile"))"
      return 0
    fi
    sleep 0.1
  done
  die "pgbouncer did not open port $port: $(tail -5 "$dir/pgbouncer.log" 2>/dev/null)"
}

case "$action" in
  start) start ;;
  stop) stop ;;
  status) if running; then echo "running (pid $(cat "$pidfile"))"; else echo "stopped"; exit 1; fi ;;
esac
