# Sourced by scripts/test.sh and scripts/e2e.sh: as root, a Docker engine of the run's own
# (scripts/dockerd.sh, stopped when the run ends) and the stacks' images built on it, FROM a Debian base
# made with debootstrap (scripts/base_image.sh; both cached, so only a new machine pays the builds).
# Elsewhere nothing happens and the tests that need containers skip, saying why.
if [ "$(id -u)" = 0 ] && command -v dockerd >/dev/null; then
  DOCKER_HOST=$(bash scripts/dockerd.sh start)
  export DOCKER_HOST
  trap 'bash scripts/dockerd.sh stop' EXIT
  # Containers a killed run left behind (the engine's data root is kept for its image cache).
  docker ps -aq --filter label=postgres-platform.component | xargs -r docker rm -f >/dev/null
  started=$(date +%s)
  base=$(bash scripts/base_image.sh | tail -n 1)
  python3 scripts/build_images.py --base "$base"
  echo "images ready in $(( $(date +%s) - started )) s (FROM $base)"
fi
