"""Images: pinned by tag or digest; PgBouncer at a release carrying the CVE fixes."""

from __future__ import annotations

from pulumi_policy import EnforcementLevel, ReportViolation, ResourceValidationArgs, ResourceValidationPolicy

from policy.resources import CONTAINER, REMOTE_IMAGE, component
from postgres_platform.model.images import is_pinned, pgbouncer_problem
from postgres_platform.model.names import PGBOUNCER
from postgres_platform.render.monitoring_containers import MONITORING_LABELS

IMAGE_INPUT = {REMOTE_IMAGE: "name", CONTAINER: "image"}  # where each type names its image


def _is_pgbouncer(args: ResourceValidationArgs, image: str) -> bool:
    """The PgBouncer container by its label; a pulled image by its repository's name (pgbouncer_exporter's
    is not PgBouncer: it has none of its CVEs)."""
    if component(args.props) in MONITORING_LABELS:
        return False
    repository = image.split("@", 1)[0].rsplit("/", 1)[-1].split(":", 1)[0]
    return component(args.props) == PGBOUNCER or ("pgbouncer" in repository and "exporter" not in repository)


def check_pinned_image(args: ResourceValidationArgs, report: ReportViolation) -> None:
    key = IMAGE_INPUT.get(args.resource_type)
    if key is None:
        return
    image = args.props.get(key)
    if image is None or not is_pinned(image):
        report(f"{args.name}: image {image!r} must pin a tag other than latest, or an @sha256 digest", None)
    elif _is_pgbouncer(args, image) and (problem := pgbouncer_problem(image)):
        report(f"{args.name}: image {image!r}: {problem}", None)


pinned_images = ResourceValidationPolicy(
    name="pinned-images",
    description="Every image is pinned by tag (not latest) or digest; PgBouncer at a release with the CVE fixes.",
    enforcement_level=EnforcementLevel.MANDATORY,
    validate=check_pinned_image,
    remediation_steps=(
        "Pin the image by a tag other than latest or by an @sha256 digest in the stack config; for PgBouncer, a "
        "release from 1.25.2 on, or a Debian build that carries its fixes (postgres_platform.model.images)."
    ),
)
