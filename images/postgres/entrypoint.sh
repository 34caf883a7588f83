#!/bin/sh
# As the official postgres image's entrypoint, for what this program uses of it: on an empty PGDATA,
# initdb with the superuser password read from POSTGRES_PASSWORD_FILE (never an env value), SCRAM for
# TCP logins, peer for the socket; then the server as the postgres user. A pg_hba.conf of the
# program's own (hba_file) replaces the default one where the server is reachable beyond loopback.
set -eu
: "${PGDATA:?}"
if [ "$(id -u)" = 0 ]; then
  # A fresh volume or a bind mount of the host's data disk: make it the server's, then drop root.
  install -d -o postgres -g postgres -m 0700 "$PGDATA"
  exec setpriv --reuid=postgres --regid=postgres --init-groups "$0" "$@"
fi
if [ "${1:-}" = postgres ] && [ ! -s "$PGDATA/PG_VERSION" ]; then
  : "${POSTGRES_PASSWORD_FILE:?is required to initialise an empty PGDATA}"
  initdb -D "$PGDATA" -U postgres --pwfile="$POSTGRES_PASSWORD_FILE" -E UTF8 --locale=C.UTF-8 \
    --data-checksums --auth-local=peer --auth-host=scram-sha-256 >/dev/null
  # Other containers (PgBouncer on a bridge network) connect over TCP, with SCRAM, as the official image allows.
  printf 'host all all all scram-sha-256\n' >> "$PGDATA/pg_hba.conf"
fi
exec "$@"
