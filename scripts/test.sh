#!/usr/bin/env bash
# Install what the tests need, then lint, type-check and run the whole suite.
# The same command for a fresh machine, a developer, and CI (.ci/run).
set -euo pipefail
cd "$(dirname "$0")/.."

# Real-server tests need PostgreSQL 15 (initdb, pg_ctl, postgres), PgBouncer, pgBackRest and stunnel (the
# loopback S3's TLS). As root (CI, these machines) install what is missing; elsewhere they are skipped
# with the reason printed.
if [ "$(id -u)" = 0 ] && command -v apt-get >/dev/null; then
  missing=()
  command -v pgbouncer >/dev/null || [ -x /usr/sbin/pgbouncer ] || missing+=(pgbouncer)
  command -v initdb >/dev/null || [ -x /usr/lib/postgresql/15/bin/initdb ] || missing+=(postgresql-15)
  command -v psql >/dev/null || missing+=(postgresql-client-15)
  command -v pgbackrest >/dev/null || missing+=(pgbackrest)
  command -v stunnel4 >/dev/null || missing+=(stunnel4)
  if [ ${#missing[@]} -gt 0 ]; then
    apt-get update -qq
    DEBIAN_FRONTEND=noninteractive apt-get install -y -qq "${missing[@]}"
  fi
fi

python3 -m pip install -q --disable-pip-version-check -r requirements-dev.txt  # includes `-e .`
python3 -m ruff check .
python3 -m ruff format --check .
python3 -m mypy .
# Two workers (the machines have 2 cores); a module's tests stay on one worker (its servers are shared).
python3 -m pytest -rs -n 2 --dist loadfile "$@"
