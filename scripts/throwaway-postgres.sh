#!/usr/bin/env bash
# Start a disposable PostgreSQL server for the store's PostgreSQL tests and print its
# SQLAlchemy URL; `scripts/throwaway-postgres.sh stop DIR` stops it. Installs Debian's
# postgresql when its binaries are missing. The server listens on a Unix socket only.
set -euo pipefail
if [ "${1:-}" = stop ]; then
    runuser -u nobody -- "$(dirname "$(readlink -f "$(command -v initdb)")")/pg_ctl" \
        -D "$2/data" stop -m fast >/dev/null
    rm -rf "$2"
    exit 0
fi
bin=""
for candidate in "$(command -v initdb || true)" /usr/lib/postgresql/*/bin/initdb; do
    [ -x "$candidate" ] && { bin=$(dirname "$(readlink -f "$candidate")"); break; }
done
if [ -z "$bin" ]; then
    apt-get update -qq >&2 && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq postgresql >&2
    bin=$(dirname "$(ls /usr/lib/postgresql/*/bin/initdb | tail -n 1)")
fi
dir=$(mktemp -d /tmp/pathloop-pg.XXXXXX)
chown nobody "$dir"
# initdb refuses to run as root: the server runs as nobody.
runuser -u nobody -- "$bin/initdb" -D "$dir/data" -U postgres -A trust >/dev/null
runuser -u nobody -- "$bin/pg_ctl" -D "$dir/data" -o "-k $dir -p 55432 -h ''" \
    -l "$dir/server.log" -w start >/dev/null
"$bin/psql" -h "$dir" -p 55432 -U postgres -qc "create database pathloop_test" >/dev/null
echo "$dir postgresql+psycopg://postgres@/pathloop_test?host=$dir&port=55432"
