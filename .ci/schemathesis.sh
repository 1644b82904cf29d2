#!/usr/bin/env bash
# The JSON API against its own OpenAPI schema: schemathesis with every check, on a live server.
#
# Starts gunicorn on a free loopback port with a SQLite database in a temporary folder,
# makes a staff superuser and an API token for it (with a command, cookies and timers to
# find), runs `schemathesis run --checks all` against /api/openapi.json and stops the
# server. Exits non-zero on any finding. SCHEMATHESIS_MAX_EXAMPLES (default 50) sets the
# cases per operation.
set -euo pipefail
cd "$(dirname "$0")/.."
ROOT=$(pwd)
PY=.venv/bin/python
WORK=$(mktemp -d)
SERVER_PID=""
cleanup() {
  if [ -n "$SERVER_PID" ]; then kill "$SERVER_PID" 2>/dev/null || true; wait "$SERVER_PID" 2>/dev/null || true; fi
  rm -rf "$WORK"
}
trap cleanup EXIT

PORT=$("$PY" -c 'import socket; s = socket.socket(); s.bind(("127.0.0.1", 0)); print(s.getsockname()[1])')
BASE="http://127.0.0.1:$PORT"
# Production settings (DEBUG off), on plain http over loopback, with nothing shared with the other runs.
export GUILDHALL_DATA_DIR="$WORK" DEBUG=0 SECRET_KEY="schemathesis-$(openssl rand -hex 32)" \
  ALLOWED_HOSTS=127.0.0.1 SECURE_SSL_REDIRECT=0 SESSION_COOKIE_SECURE=0 CSRF_COOKIE_SECURE=0 LOG_LEVEL=WARNING
unset DATABASE_URL DATABASE_REPLICA_URL REDIS_URL DISCORD_TOKEN

"$PY" manage.py migrate --noinput -v 0
KEY=$("$PY" manage.py shell -v 0 -c '
from datetime import timedelta
from django.contrib.auth.models import User
from commands.services import command_create, cookie_give
from ops.api_tokens import api_token_create
from timers.services import timer_pause, timer_set
user = User.objects.create_superuser("schemathesis", "schemathesis@example.invalid", None)
guild = 100000000000000001
command_create(guild_id=guild, name="hello", template="Hello {user}!", author_id=None)
cookie_give(guild_id=guild, giver_id=200000000000000002, receiver_id=200000000000000001)
timer_set(guild_id=guild, member_id=200000000000000001, role_id=300000000000000001, duration=timedelta(days=1), actor_id=None)
timer_set(guild_id=guild, member_id=200000000000000002, role_id=300000000000000001, duration=timedelta(days=1), actor_id=None)
timer_pause(guild_id=guild, member_id=200000000000000002, role_id=300000000000000001, actor_id=None)
_, key = api_token_create(user=user, name="schemathesis", created_by=None)
print(key)
' | tail -1)

# No request-line limit: every generated request reaches the app, whose answers are under test (not gunicorn's 4 KB).
.venv/bin/gunicorn config.wsgi --bind "127.0.0.1:$PORT" --workers 2 --no-control-socket --limit-request-line 0 \
  --error-logfile "$WORK/gunicorn.log" --access-logfile /dev/null &
SERVER_PID=$!
for _ in $(seq 1 50); do
  curl -fsS "$BASE/health" >/dev/null 2>&1 && break
  kill -0 "$SERVER_PID" 2>/dev/null || { cat "$WORK/gunicorn.log" >&2; exit 1; }
  sleep 0.2
done

run_schemathesis() {
  # From the temporary folder, so that schemathesis' cache (.schemathesis/) does not land in the checkout.
  (cd "$WORK" && "$ROOT/.venv/bin/schemathesis" --config-file "$ROOT/.ci/schemathesis.toml" run "$BASE/api/openapi.json" \
    --checks all -H "Authorization: Bearer $KEY" --max-examples "${SCHEMATHESIS_MAX_EXAMPLES:-50}" \
    --seed "$1" --workers 2 --request-timeout 30 --report-dir "$WORK/report" "${@:2}") 2>&1 | tee "$WORK/schemathesis.out"
  return "${PIPESTATUS[0]}"
}
status=0
run_schemathesis "${SCHEMATHESIS_SEED:-1}" || status=$?
# hypothesis on Python 3.11 dies inside itself in the coverage phase now and then ("AST
# constructor recursion depth mismatch", CPython's ast.parse while it describes a lambda): a
# Runtime Error with no finding about the API is run once more with the next seed, then once
# more without the coverage phase (examples, fuzzing and stateful still run every check).
for retry in "" "--phases examples,fuzzing,stateful"; do
  if [ "$status" != 0 ] && grep -q "Runtime Error" "$WORK/schemathesis.out" && ! grep -q "^Failures:" "$WORK/schemathesis.out"; then
    echo "--- schemathesis errored inside itself without a finding; running it once more ${retry}" >&2
    status=0
    # shellcheck disable=SC2086  # the phases option is two words on purpose
    run_schemathesis "$(( ${SCHEMATHESIS_SEED:-1} + 1 ))" $retry || status=$?
  fi
done
if [ "$status" != 0 ] && grep -q "Traceback" "$WORK/gunicorn.log"; then
  echo "--- server errors:" >&2
  grep -A30 "Traceback" "$WORK/gunicorn.log" | head -80 >&2
fi
exit "$status"
