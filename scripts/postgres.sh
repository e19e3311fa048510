#!/usr/bin/env bash
# Start a throw-away PostgreSQL server on loopback for GifLab's Dagster instance storage, and
# print the line that points GifLab at it:
#
#   eval "$(bash scripts/postgres.sh)"     # exports GIFLAB_DAGSTER_POSTGRES_URL
#
# Installs Debian's postgresql package if no server binaries are found (as root, or via sudo).
# The cluster lives in $GIFLAB_PG_DIR (default /tmp/giflab-postgres), listens on 127.0.0.1 only,
# port $GIFLAB_PG_PORT (default 54329), and trusts local connections: for tests and trials,
# not for production (docs/scale-out.md says what to use there).
# `bash scripts/postgres.sh stop` stops it.
set -euo pipefail
PG_DIR=${GIFLAB_PG_DIR:-/tmp/giflab-postgres}
PG_PORT=${GIFLAB_PG_PORT:-54329}
DB=${GIFLAB_PG_DB:-giflab_dagster}
SUDO=""; [ "$(id -u)" = 0 ] || SUDO=sudo

bindir() {
  local d
  for d in /usr/lib/postgresql/*/bin /usr/local/opt/postgresql*/bin /opt/homebrew/opt/postgresql*/bin; do
    [ -x "$d/initdb" ] && { echo "$d"; return; }
  done
  command -v initdb >/dev/null && dirname "$(command -v initdb)"
}

BIN=$(bindir || true)
if [ -z "$BIN" ]; then
  if command -v apt-get >/dev/null; then
    echo "installing postgresql (Debian)" >&2
    $SUDO apt-get update -qq >&2
    DEBIAN_FRONTEND=noninteractive $SUDO apt-get install -y -qq postgresql >&2
  elif command -v brew >/dev/null; then
    brew install postgresql >&2
  fi
  BIN=$(bindir)
fi

# The server refuses to run as root: run it as the postgres user when we are root.
as_owner() {
  if [ "$(id -u)" = 0 ]; then
    runuser -u postgres -- "$@"
  else
    "$@"
  fi
}

if [ "${1:-start}" = stop ]; then
  as_owner "$BIN/pg_ctl" -D "$PG_DIR" -m fast stop >&2 || true
  exit 0
fi

answers() { "$BIN/psql" -h 127.0.0.1 -p "$PG_PORT" -U postgres -Atc "SELECT 1" >/dev/null 2>&1; }

# A server already answering on the port (an earlier run's, from another folder) is reused.
if answers; then
  :
elif [ ! -f "$PG_DIR/PG_VERSION" ]; then
  mkdir -p "$PG_DIR"
  [ "$(id -u)" = 0 ] && chown postgres "$PG_DIR"
  as_owner "$BIN/initdb" -D "$PG_DIR" -U postgres --auth=trust -E UTF8 >/dev/null
fi
if ! answers; then
  as_owner "$BIN/pg_ctl" -D "$PG_DIR" -l "$PG_DIR/server.log" -w \
    -o "-c listen_addresses=127.0.0.1 -p $PG_PORT -k $PG_DIR" start >&2
fi
if ! "$BIN/psql" -h 127.0.0.1 -p "$PG_PORT" -U postgres -Atc \
  "SELECT 1 FROM pg_database WHERE datname = '$DB'" | grep -q 1; then
  "$BIN/psql" -h 127.0.0.1 -p "$PG_PORT" -U postgres -qc "CREATE DATABASE $DB" >&2
fi
echo "export GIFLAB_DAGSTER_POSTGRES_URL=postgresql+psycopg2://postgres@127.0.0.1:$PG_PORT/$DB"
