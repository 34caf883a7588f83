#!/usr/bin/env bash
# End-to-end runs with the real Pulumi engine: builds it (or takes it from the cache: scripts/engine.sh),
# starts the Docker engine and images the real-server tests use, and runs the `e2e` tests on a file
# backend in temp dirs with a passphrase secrets provider, never downloading a plugin. The same command
# for a developer and CI (.ci/run, after the fast suite).
set -euo pipefail
cd "$(dirname "$0")/.."
started=$(date +%s)
PGPLAT_ENGINE_BIN=$(bash scripts/engine.sh | tail -n 1)
export PGPLAT_ENGINE_BIN
echo "engine ready in $(( $(date +%s) - started )) s: $PGPLAT_ENGINE_BIN"
if [ -s "$PGPLAT_ENGINE_BIN/MISSING" ]; then
  echo "provider plugins not built (the Go module proxy serves none of their modules; MANIFEST says why):" \
    "$(tr '\n' ' ' < "$PGPLAT_ENGINE_BIN/MISSING")"
fi
# shellcheck source=scripts/containers.sh
source scripts/containers.sh
python3 -m pytest -rs -p no:xdist -m e2e tests/e2e "$@"
