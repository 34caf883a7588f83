"""Images (pure): what the images in images/ carry, which references are pinned, and which PgBouncer
builds carry the CVE fixes.

The stacks run two images this program builds from images/ (on the database host, `docker.Image`),
FROM a pinned Debian base, with Debian packages at pinned versions: the binaries are the same in
production, in the tests and in the end-to-end runs. BUILDS is the one table of those versions.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from pathlib import Path

IMAGES_DIR = Path(__file__).resolve().parents[2] / "images"

# Debian 13's official image, pinned by date: where a registry serves it. Without one, build a base of
# the same suite with scripts/base_image.sh and name it in the stack's `imageBase` (docs/versions.md).
DEFAULT_BASE = "debian:trixie-20260406-slim"


@dataclass(frozen=True)
class ImageBuild:
    reference: str  # what a stack names (postgres.image, pgbouncer.image) and the container runs
    context: str  # its directory under images/
    build_args: dict[str, str]  # the Dockerfile's ARGs: Debian package versions
    versions: dict[str, str]  # the upstream versions it carries, as preflight reports them

    def args_with_base(self, base: str) -> dict[str, str]:
        return {"BASE": base, **self.build_args}

    @property
    def directory(self) -> Path:
        return IMAGES_DIR / self.context


# Debian 13 (trixie): PostgreSQL 17.12 with pgBackRest 2.55.1 (which supports PostgreSQL 17; 2.56 added 18),
# and Patroni 4.0.7 with python-etcd (its etcd client: Patroni's etcd3 DCS speaks etcd's v3 JSON
# gateway and takes its errors from python-etcd). The tag stays the Postgres build's: Patroni is only
# started where a stack asks for it, the server the image runs is the same.
POSTGRES_17 = ImageBuild(
    reference="postgres-platform/postgres:17.12-deb13u1-patroni4.0.7",
    context="postgres",
    build_args={
        "POSTGRES_MAJOR": "17",
        "POSTGRESQL_VERSION": "17.12-0+deb13u1",
        "PGBACKREST_VERSION": "2.55.1-1",
        "PATRONI_VERSION": "4.0.7-3~deb13u1",
        "PYTHON_ETCD_VERSION": "0.4.5-6",
    },
    versions={"postgres": "17.12", "pgbackrest": "2.55.1", "patroni": "4.0.7"},
)
# Debian 13's PgBouncer 1.24.1-1+deb13u2: the fixes of 1.24.1 (CVE-2025-2291), deb13u1 (CVE-2025-12819)
# and deb13u2 (CVE-2026-6664, -6665, -6666, -6667), read in the package's changelog.Debian: every CVE
# fixed upstream through 1.25.2.
PGBOUNCER_124 = ImageBuild(
    reference="postgres-platform/pgbouncer:1.24.1-deb13u2",
    context="pgbouncer",
    build_args={"PGBOUNCER_VERSION": "1.24.1-1+deb13u2"},
    versions={"pgbouncer": "1.24.1"},
)
# Debian 13's Prometheus 2.53.3 (its promtool checks and unit-tests the generated alert rules).
PROMETHEUS_253 = ImageBuild(
    reference="postgres-platform/prometheus:2.53.3-deb13",
    context="prometheus",
    build_args={"PROMETHEUS_VERSION": "2.53.3+ds1-2"},
    versions={"prometheus": "2.53.3"},
)
# Debian 13's exporters and Alertmanager (trixie main, no security update since): one image each, as
# each runs where its target is (the exporters beside the server and PgBouncer, Alertmanager beside
# Prometheus) and is pinned and upgraded on its own.
POSTGRES_EXPORTER_017 = ImageBuild(
    reference="postgres-platform/postgres-exporter:0.17.1-deb13",
    context="postgres-exporter",
    build_args={"POSTGRES_EXPORTER_VERSION": "0.17.1-1+b4"},
    versions={"postgres_exporter": "0.17.1"},
)
PGBOUNCER_EXPORTER_010 = ImageBuild(
    reference="postgres-platform/pgbouncer-exporter:0.10.2-deb13",
    context="pgbouncer-exporter",
    build_args={"PGBOUNCER_EXPORTER_VERSION": "1:0.10.2-2"},
    versions={"pgbouncer_exporter": "0.10.2"},
)
ALERTMANAGER_028 = ImageBuild(
    reference="postgres-platform/alertmanager:0.28.1-deb13",
    context="alertmanager",
    build_args={"ALERTMANAGER_VERSION": "0.28.1+ds-1"},
    versions={"alertmanager": "0.28.1"},
)
MONITORING_BUILDS = (POSTGRES_EXPORTER_017, PGBOUNCER_EXPORTER_010, ALERTMANAGER_028)
# Debian 13's etcd 3.5.16: the DCS Patroni keeps its leader lock in (server and etcdctl).
ETCD_35 = ImageBuild(
    reference="postgres-platform/etcd:3.5.16-deb13",
    context="etcd",
    build_args={"ETCD_VERSION": "3.5.16-4"},
    versions={"etcd": "3.5.16"},
)
# Debian 13's HAProxy 3.0.11 (+deb13u5, from trixie-security): the failover drill's stand-in for the
# Hetzner load balancer, health-checking Patroni's /primary.
HAPROXY_30 = ImageBuild(
    reference="postgres-platform/haproxy:3.0.11-deb13u5",
    context="haproxy",
    build_args={"HAPROXY_VERSION": "3.0.11-1+deb13u5"},
    versions={"haproxy": "3.0.11"},
)
BUILDS = {
    build.reference: build
    for build in (POSTGRES_17, PGBOUNCER_124, PROMETHEUS_253, ETCD_35, HAPROXY_30, *MONITORING_BUILDS)
}

MIN_PGBOUNCER = (1, 25, 2)  # upstream: the release with every CVE fix so far
# Debian builds of older releases that carry those fixes as patches: (version, suite) -> first update.
PATCHED_PGBOUNCER: dict[tuple[tuple[int, ...], int], int] = {((1, 24, 1), 13): 2}
PGBOUNCER_CVES = (
    "CVE-2025-2291 (VALID UNTIL ignored with auth_query, fixed in 1.24.1), CVE-2025-12819 (search_path with "
    "auth_user, 1.25.1), CVE-2026-6664 and three more (1.25.2)"
)
# `1.25.2`, `v1.25.2-p0`, or a Debian build `1.24.1-deb13u2` (the package's version, `+` being no tag character).
_VERSION = re.compile(r"^v?(\d+)\.(\d+)\.(\d+)(?:-deb(\d+)u(\d+))?")


def versions_of(*images: str | None) -> dict[str, str]:
    """What these images carry, where they are builds of images/: {"postgres", "pgbackrest", "pgbouncer"}."""
    versions: dict[str, str] = {}
    for image in images:
        if image in BUILDS:
            versions |= BUILDS[image].versions
    return versions


def tag_of(image: str) -> str:
    """`name:tag@sha256:...` -> tag; no tag -> ''."""
    last = image.split("@", 1)[0].rsplit("/", 1)[-1]
    return last.split(":", 1)[1] if ":" in last else ""


def is_pinned(image: str) -> bool:
    """A digest, an image ID, or a tag other than latest (a bare name floats: a re-pull can bring another version)."""
    if "@sha256:" in image or image.startswith("sha256:"):
        return True
    tag = tag_of(image)
    return bool(tag) and tag != "latest"


def pgbouncer_problem(image: str) -> str | None:
    """Why this PgBouncer image is not acceptable, or None. The version is read from the tag: an
    upstream release (`v1.25.2-p0`, `1.25.2`) from 1.25.2 on, or a Debian build listed in
    PATCHED_PGBOUNCER at or after its fixing update; a digest without a tag cannot show one."""
    match = _VERSION.match(tag_of(image))
    minimum = ".".join(map(str, MIN_PGBOUNCER))
    if match is None:
        return f"its tag shows no PgBouncer version: pin `name:v{minimum}...` (a digest may follow the tag)"
    version = tuple(int(part) for part in match.groups()[:3])
    if version >= MIN_PGBOUNCER:
        return None
    if match.group(4) is not None:
        first_fixed = PATCHED_PGBOUNCER.get((version, int(match.group(4))))
        if first_fixed is not None and int(match.group(5)) >= first_fixed:
            return None
    shown = ".".join(map(str, version)) + (f"-deb{match.group(4)}u{match.group(5)}" if match.group(4) else "")
    return f"PgBouncer {shown} is older than {minimum} and no Debian build with its fixes: {PGBOUNCER_CVES}"


def postgres_major(image: str) -> int | None:
    """`postgres-platform/postgres:17.12-deb13u1-patroni4.0.7` -> 17; None where the tag shows no version."""
    match = re.match(r"^(\d+)", tag_of(image))
    return int(match.group(1)) if match else None
