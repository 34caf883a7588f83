#!/usr/bin/env bash
# Install what the tests need, then lint, type-check and run the whole suite.
# The same command for a fresh machine, a developer, and CI (.ci/run).
set -euo pipefail
cd "$(dirname "$0")/.."

step() { printf '\n== %s ==\n' "$*"; }  # each step named in the output, so a failure says where

step "install: system packages (as root), then Python packages"

# Real-server tests run the stacks' own images in containers: a Docker engine of the run's own
# (scripts/dockerd.sh: vfs, its own socket, stopped at the end), a Debian base made with debootstrap
# (scripts/base_image.sh, cached) and the images built from images/ (scripts/build_images.py, cached by
# Docker). As root (CI, these machines) install what is missing; elsewhere those tests are skipped with
# the reason printed. stunnel4 and openssl serve the loopback S3's TLS; moto comes from PyPI.
if [ "$(id -u)" = 0 ] && command -v apt-get >/dev/null; then
  missing=()
  command -v dockerd >/dev/null || missing+=(docker.io)
  command -v debootstrap >/dev/null || missing+=(debootstrap)
  command -v stunnel4 >/dev/null || missing+=(stunnel4)
  command -v openssl >/dev/null || missing+=(openssl)
  if [ ${#missing[@]} -gt 0 ]; then
    apt-get update -qq
    DEBIAN_FRONTEND=noninteractive apt-get install -y -qq "${missing[@]}"
  fi
fi

python3 -m pip install -q --disable-pip-version-check -r requirements-dev.txt  # includes `-e .`
step "lint: ruff check (complexity included), ruff format --check"
python3 -m ruff check .
python3 -m ruff format --check .
step "types: mypy --strict"
python3 -m mypy .
step "docs: the generated pages match the config schema and the policies"
python3 -m postgres_platform.docs --check
step "images: a Docker engine of this run's own and the stacks' images"
# shellcheck source=scripts/containers.sh
source scripts/containers.sh
step "tests: unit, program, integration (tests/<tier>; the e2e runs are scripts/e2e.sh)"
# Two workers (the machines have 2 cores); a module's tests stay on one worker (its servers are shared).
python3 -m pytest -rs -n 2 --dist loadfile "$@"
