#!/usr/bin/env bash
# A throwaway PostgreSQL for tests/test_tuning_postgres.py (Optuna RDB storage).
#
#   eval "$(.ci/postgres.sh)"          # installs if needed, starts, exports TABTUNE_TEST_PG_URL
#   CI=true .venv/bin/python -m pytest tests/test_tuning_postgres.py
#   .ci/postgres.sh stop               # stops the cluster this script started
#
# Debian/Ubuntu. Installs the `postgresql` package with apt-get when no server binaries are
# found (needs root), runs a private cluster as the `postgres` user (or as the current user
# when not root) listening on 127.0.0.1 only, on a free port, with a random password, and
# creates the database `tabtune_test`. Only the `export ...` line goes to stdout; progress
# goes to stderr. On GitHub Actions the variable is also appended to $GITHUB_ENV.
set -euo pipefail

STATE="${TABTUNE_PG_STATE:-/tmp/tabtune-postgres}"

log() { echo "postgres.sh: $*" >&2; }

find_bin() { ls -d /usr/lib/postgresql/*/bin 2>/dev/null | sort -V | tail -n 1; }

if [[ "$(id -u)" == 0 ]]; then
    OWNER=postgres
    as_owner() { runuser -u postgres -- "$@"; }
else
    OWNER="$(id -un)"
    as_owner() { "$@"; }
fi

if [[ "${1:-start}" == "stop" ]]; then
    BIN="$(find_bin)"
    if [[ -n "$BIN" && -f "$STATE/data/postmaster.pid" ]]; then
        as_owner "$BIN/pg_ctl" -D "$STATE/data" -m fast -w stop >&2
    fi
    rm -rf "$STATE"
    log "stopped"
    exit 0
fi

BIN="$(find_bin)"
if [[ -z "$BIN" ]]; then
    log "installing postgresql with apt-get"
    SUDO=""
    [[ "$(id -u)" != 0 ]] && SUDO="sudo"
    export DEBIAN_FRONTEND=noninteractive
    $SUDO apt-get update >&2
    $SUDO apt-get install -y postgresql >&2
    BIN="$(find_bin)"
    [[ "$(id -u)" == 0 ]] && OWNER=postgres
fi
[[ -n "$BIN" ]] || { log "no PostgreSQL server binaries under /usr/lib/postgresql"; exit 1; }

if [[ -f "$STATE/data/postmaster.pid" ]]; then
    log "a cluster is already running in $STATE; run '$0 stop' first"
    exit 1
fi
rm -rf "$STATE"
mkdir -p "$STATE"
PORT="$(python3 -c 'import socket; s = socket.socket(); s.bind(("127.0.0.1", 0)); print(s.getsockname()[1])')"
PASSWORD="$(python3 -c 'import secrets; print(secrets.token_hex(16))')"
printf '%s\n' "$PASSWORD" > "$STATE/pwfile"
chmod 600 "$STATE/pwfile"
chown -R "$OWNER" "$STATE"

log "initdb ($BIN) in $STATE/data"
as_owner "$BIN/initdb" -D "$STATE/data" -U postgres --pwfile="$STATE/pwfile" \
    --auth=scram-sha-256 --encoding=UTF8 --locale=C >&2
rm -f "$STATE/pwfile"

log "starting on 127.0.0.1:$PORT"
as_owner "$BIN/pg_ctl" -D "$STATE/data" -l "$STATE/server.log" -w \
    -o "-c listen_addresses=127.0.0.1 -p $PORT -k $STATE -c fsync=off" start >&2

PGPASSWORD="$PASSWORD" as_owner "$BIN/psql" -h 127.0.0.1 -p "$PORT" -U postgres -d postgres \
    -v ON_ERROR_STOP=1 -q -c "CREATE DATABASE tabtune_test" >&2

URL="postgresql+psycopg2://postgres:${PASSWORD}@127.0.0.1:${PORT}/tabtune_test"
if [[ -n "${GITHUB_ENV:-}" ]]; then
    echo "TABTUNE_TEST_PG_URL=$URL" >> "$GITHUB_ENV"
fi
log "ready: database tabtune_test on 127.0.0.1:$PORT (stop with: $0 stop)"
echo "export TABTUNE_TEST_PG_URL='$URL'"
