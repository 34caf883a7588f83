#!/usr/bin/env bash
# The Debian base the images in images/ are built FROM, where no registry serves debian:*-slim:
# debootstrap (minbase) from the Debian mirror this machine's apt already uses, then `docker import`.
# Cached as a tarball keyed by suite and this script, so only a new machine pays the debootstrap.
# Prints the image reference on its last line. Needs root (debootstrap) and a running Docker engine.
set -euo pipefail
suite=${1:-trixie}
cache=${PGPLAT_CACHE:-/var/cache/postgres-platform}/base
key=$(printf '%s\n' "$suite" | cat - "$0" | sha256sum | cut -c1-12)
ref="postgres-platform/debian:$suite-$key"

if docker image inspect "$ref" >/dev/null 2>&1; then
  echo "$ref"
  exit 0
fi

# The mirrors from apt's own sources (deb822 or one-line), never a host written here.
sources() {
  cat /etc/apt/sources.list.d/*.sources 2>/dev/null | awk -v want="$1" '
    /^URIs:/ {uri=$2} /^Suites:/ {for (i=2;i<=NF;i++) if ((want=="security") == ($i ~ /-security$/)) print uri}' || true
  grep -hsE '^deb ' /etc/apt/sources.list /etc/apt/sources.list.d/*.list | awk -v want="$1" \
    '{if ((want=="security") == ($3 ~ /-security$/)) print $2}' || true
}
mirror=$(sources main | head -n 1)
security=$(sources security | head -n 1)
[ -n "$mirror" ] || { echo "base_image.sh: no Debian mirror in this machine's apt sources" >&2; exit 1; }

tarball="$cache/debian-$suite-$key.tar"
if [ ! -s "$tarball" ]; then
  command -v debootstrap >/dev/null || { echo "base_image.sh: debootstrap is not installed" >&2; exit 1; }
  mkdir -p "$cache"
  root=$(mktemp -d "$cache/rootfs.XXXXXX")
  chmod 0755 "$root"  # the image's / (mktemp made it 0700: no other user could reach a file)
  trap 'rm -rf "$root"' EXIT
  echo "debootstrap $suite (minbase) from $mirror ..." >&2
  debootstrap --variant=minbase "$suite" "$root" "$mirror" >&2
  {
    echo "deb $mirror $suite main"
    echo "deb $mirror $suite-updates main"
    [ -z "$security" ] || echo "deb $security $suite-security main"
  } > "$root/etc/apt/sources.list"
  # As Debian's own container images: no recommends, no services started by package scripts, no caches.
  printf 'APT::Install-Recommends "false";\nAPT::Install-Suggests "false";\n' > "$root/etc/apt/apt.conf.d/90container"
  printf '#!/bin/sh\nexit 101\n' > "$root/usr/sbin/policy-rc.d"
  chmod 0755 "$root/usr/sbin/policy-rc.d"
  rm -rf "$root"/var/lib/apt/lists/* "$root"/var/cache/apt/archives/*.deb "$root"/tmp/*
  tar -C "$root" --numeric-owner -cf "$tarball.tmp" .
  mv "$tarball.tmp" "$tarball"
fi
# An imported image has no environment: PATH as in Debian's official images.
docker import --change 'ENV PATH=/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin' \
  --change 'CMD ["bash"]' "$tarball" "$ref" >/dev/null
echo "$ref"
