"""Data: PGDATA volumes, databases and schemas protected from deletion; backups configured."""

from __future__ import annotations

from pulumi_policy import (
    EnforcementLevel,
    PolicyResource,
    ReportViolation,
    ResourceValidationArgs,
    ResourceValidationPolicy,
    StackValidationArgs,
    StackValidationPolicy,
)

from policy.resources import (
    BACKUPS,
    DATABASE,
    DOCKER_VOLUME,
    HCLOUD_SERVER,
    HCLOUD_VOLUME,
    SCHEMA,
    component,
    is_command_of,
    postgres_servers,
    settings_in_stack,
)
from postgres_platform.model.names import DATA_VOLUME, PRIMARY

# --- protected-data ----------------------------------------------------------------------------


def check_protected_data(args: ResourceValidationArgs, report: ReportViolation) -> None:
    hetzner = args.resource_type == HCLOUD_VOLUME
    labelled = args.resource_type == DOCKER_VOLUME and component(args.props) == DATA_VOLUME
    if not (hetzner or labelled):
        return
    if not args.opts.protect:
        report(f"volume {args.name} holds PGDATA and is not protected", None)
    if hetzner and not args.props.get("deleteProtection"):
        report(f"volume {args.name} holds PGDATA without Hetzner delete protection", None)


protected_data = ResourceValidationPolicy(
    name="protected-data",
    description="Volumes holding PGDATA are protected (MANDATORY where the policy config says so, as prod's).",
    enforcement_level=EnforcementLevel.ADVISORY,
    validate=check_protected_data,
    remediation_steps=(
        "Set protect on the volume holding PGDATA, so that deleting it takes an explicit step; on Hetzner, "
        "enable the volume's delete protection too."
    ),
)


# --- protected-databases -----------------------------------------------------------------------


def check_protected_databases(args: ResourceValidationArgs, report: ReportViolation) -> None:
    """A Database or Schema that is not protected is dropped when it leaves the config (or is renamed)."""
    if args.resource_type in (DATABASE, SCHEMA) and not args.opts.protect:
        kind = "database" if args.resource_type == DATABASE else "schema"
        report(f"{kind} {args.props.get('name')} ({args.name}) must be protected: an up would DROP it", None)


protected_databases = ResourceValidationPolicy(
    name="protected-databases",
    description="Every Database and Schema resource is protected: no `pulumi up` drops one.",
    enforcement_level=EnforcementLevel.MANDATORY,
    validate=check_protected_databases,
    remediation_steps="Declare every Database and Schema with protect; dropping one is then a deliberate step.",
)


# --- backups-configured ------------------------------------------------------------------------

# pgBackRest's command line as postgres_platform.render.backup writes it into the Backups commands
# (that module passes these as literals and names none of them).
STANZA_CREATE = "stanza-create"
FULL_BACKUP = "--type=full backup"
ENCRYPTED = "--repo1-cipher-type=aes-256-cbc"
OFF_HOST = "--repo1-type=s3"
RETENTION = "--repo1-retention-full"


def _script(command: PolicyResource) -> str:
    return str(command.props.get("create") or "")


def _check_archiving(args: StackValidationArgs, report: ReportViolation) -> None:
    for server in postgres_servers(args.resources, (PRIMARY,)):
        if settings_in_stack(server, args.resources).get("archive_mode") != "on":
            report(f"container {server.name}: archive_mode is not on: no point-in-time recovery", server.urn)


def _check_stanzas(stanzas: list[PolicyResource], report: ReportViolation) -> None:
    if not stanzas:
        report("no pgBackRest stanza is created: backups are not configured", None)
    for stanza in stanzas:
        if ENCRYPTED not in _script(stanza):
            report(f"{stanza.name}: the repository is not encrypted ({ENCRYPTED})", stanza.urn)


def _check_schedules(schedules: list[PolicyResource], report: ReportViolation) -> None:
    if not schedules:
        report("no scheduled full backup on the host (the backup timers)", None)
    for schedule in schedules:
        text = _script(schedule)
        if OFF_HOST not in text:
            report(f"{schedule.name}: backups must go to object storage off the host ({OFF_HOST})", schedule.urn)
        if f"{RETENTION}=" not in text:
            report(f"{schedule.name}: no retention ({RETENTION})", schedule.urn)


def check_backups(args: StackValidationArgs, report: ReportViolation) -> None:
    """Read from what runs: the primary's `archive_mode`, the stanza command (encryption) and, on a
    Hetzner stack, the scheduled backup command (an s3 repository, retention)."""
    hetzner = any(r.resource_type == HCLOUD_SERVER for r in args.resources)
    commands = [r for r in args.resources if is_command_of(r, BACKUPS)]
    stanzas = [c for c in commands if STANZA_CREATE in _script(c)]
    if not hetzner and not stanzas:
        args.not_applicable("no backups declared (they are required on Hetzner stacks)")
    _check_archiving(args, report)
    _check_stanzas(stanzas, report)
    if hetzner:
        # The stanza's first full backup is no schedule: only the other commands count.
        _check_schedules([c for c in commands if FULL_BACKUP in _script(c) and c not in stanzas], report)


backups_configured = StackValidationPolicy(
    name="backups-configured",
    description="Archiving on, an encrypted pgBackRest stanza; on Hetzner, scheduled backups to S3 with retention.",
    enforcement_level=EnforcementLevel.MANDATORY,
    validate=check_backups,
    remediation_steps=(
        "Configure backup: in the stack config (the program then turns archive_mode on and creates an encrypted "
        "stanza); on a Hetzner stack, with repo: s3 and retentionFull, which the backup timers run with."
    ),
)
