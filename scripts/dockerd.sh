#!/usr/bin/env bash
# A Docker engine of the project's own for tests and end-to-end runs: `start` prints its DOCKER_HOST,
# `stop` ends it by its PID. Storage driver vfs (works inside any sandbox); its data root lives in the
# cache so built images survive between runs; it listens on its own socket, never on TCP.
set -euo pipefail
cache=${PGPLAT_CACHE:-/var/cache/postgres-platform}
run=${PGPLAT_DOCKER_RUN:-/run/postgres-platform-docker}
sock="unix://$run/docker.sock"
pidfile="$run/dockerd.pid"

running() { [ -s "$pidfile" ] && kill -0 "$(cat "$pidfile")" 2>/dev/null; }

case "${1:-}" in
  start)
    if ! running; then
      command -v dockerd >/dev/null || { echo "dockerd.sh: dockerd is not installed (apt-get install docker.io)" >&2; exit 1; }
      mkdir -p "$run" "$cache/docker"
      rm -f "$pidfile" "$run/docker.sock"
      # As Docker's systemd unit (LimitNOFILE=infinity): containers may ask for high file limits
      # (PgBouncer's nofile is sized to maxClientConn), which cannot exceed the engine's own.
      ulimit -Hn 1048576 2>/dev/null || true  # a sandbox may refuse: then its hard limit is the ceiling
      ulimit -Sn "$(ulimit -Hn)"
      # --bridge=none: containers use the host network or networks the tests create themselves.
      setsid dockerd --storage-driver vfs --data-root "$cache/docker" --exec-root "$run/exec" \
        --pidfile "$pidfile" -H "$sock" --bridge=none >"$run/dockerd.log" 2>&1 < /dev/null &
      for _ in $(seq 1 120); do
        DOCKER_HOST=$sock docker version >/dev/null 2>&1 && break
        sleep 0.5
      done
      DOCKER_HOST=$sock docker version >/dev/null 2>&1 || { tail -n 20 "$run/dockerd.log" >&2; exit 1; }
    fi
    echo "$sock"
    ;;
  stop)
    if running; then
      pid=$(cat "$pidfile")
      kill "$pid"
      for _ in $(seq 1 60); do kill -0 "$pid" 2>/dev/null || break; sleep 0.5; done
    fi
    ;;
  *)
    echo "usage: dockerd.sh start|stop" >&2
    exit 2
    ;;
esac
