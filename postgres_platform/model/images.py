"""Image references (pure): pinned or floating, and whether a PgBouncer image carries the CVE fixes."""

from __future__ import annotations

import re

MIN_PGBOUNCER = (1, 25, 2)
PGBOUNCER_CVES = (
    "CVE-2025-2291 (VALID UNTIL ignored with auth_query, fixed in 1.24.1), CVE-2025-12819 (search_path with "
    "auth_user, 1.25.1), CVE-2026-6664 and three more (1.25.2)"
)
_VERSION = re.compile(r"^v?(\d+)\.(\d+)\.(\d+)")


def tag_of(image: str) -> str:
    """`name:tag@sha256:...` -> tag; no tag -> ''."""
    last = image.split("@", 1)[0].rsplit("/", 1)[-1]
    return last.split(":", 1)[1] if ":" in last else ""


def is_pinned(image: str) -> bool:
    """A digest, an image ID, or a tag other than latest (a bare name floats: seed 001's outage)."""
    if "@sha256:" in image or image.startswith("sha256:"):
        return True
    tag = tag_of(image)
    return bool(tag) and tag != "latest"


def pgbouncer_problem(image: str) -> str | None:
    """Why this PgBouncer image is not acceptable, or None. The version is read from the tag
    (`v1.25.2-p0`, `1.25.2`); a digest without a tag cannot show one."""
    match = _VERSION.match(tag_of(image))
    if match is None:
        minimum = ".".join(map(str, MIN_PGBOUNCER))
        return f"its tag shows no PgBouncer version: pin `name:v{minimum}...` (a digest may follow the tag)"
    version = tuple(int(part) for part in match.groups())
    if version < MIN_PGBOUNCER:
        return (f"PgBouncer {'.'.join(map(str, version))} is older than {'.'.join(map(str, MIN_PGBOUNCER))}, "
                f"which fixes {PGBOUNCER_CVES}")  # fmt: skip
    return None
