"""postgres-platform's CrossGuard policies: they check the resources the program declares.

Importing this module starts nothing (policy/__main__.py builds the PolicyPack, which blocks).
It checks what the program declares, not a report the program makes about itself; the budget's
arithmetic is the config check's own (postgres_platform.model.budget), so the two cannot disagree.

Preview trap: a policy that reads an unknown value is turned ADVISORY by the SDK without a word. So
every policy here reads only literal inputs (limits, flags, `-c` arguments, labels, ports, image
names); passwords and other computed values are never read, only their dependencies.
"""

from __future__ import annotations

import ipaddress
import re
from collections.abc import Iterable, Mapping
from typing import Any

from pulumi_policy import (
    EnforcementLevel,
    PolicyConfigSchema,
    PolicyResource,
    ReportViolation,
    ResourceValidationArgs,
    ResourceValidationPolicy,
    StackValidationArgs,
    StackValidationPolicy,
)
from pulumi_policy.proxy import UnknownValueError

from postgres_platform.model.budget import Entry, ServerBudget
from postgres_platform.model.images import is_pinned, pgbouncer_problem
from postgres_platform.model.networks import is_private, too_wide

COMPONENT_LABEL = "postgres-platform.component"
SERVERS = ("postgres", "postgres-replica")  # label values of Postgres server containers
CONTAINER = "docker:index/container:Container"
REMOTE_IMAGE = "docker:index/remoteImage:RemoteImage"
DOCKER_VOLUME = "docker:index/volume:Volume"
ROLE = "postgresql:index/role:Role"
FIREWALL = "hcloud:index/firewall:Firewall"
HCLOUD_VOLUME = "hcloud:index/volume:Volume"
RANDOM_PASSWORD = "random:index/randomPassword:RandomPassword"
COMMANDS = ("command:local:Command", "command:remote:Command")
DATABASE_PORTS = (5432, 6432)
POSTGRES_DEFAULTS = {"max_connections": "100", "superuser_reserved_connections": "3"}


def labels(props: Mapping[str, Any]) -> dict[str, str]:
    return {item["label"]: item["value"] for item in props.get("labels") or []}


def _component(props: Mapping[str, Any]) -> str | None:
    return labels(props).get(COMPONENT_LABEL)


def server_settings(command: Iterable[str]) -> dict[str, str]:
    """`postgres -c name=value ...` (also `-cname=value` and `--name=value`) as a mapping."""
    args = list(command)
    settings: dict[str, str] = {}
    for i, arg in enumerate(args):
        if arg == "-c" and i + 1 < len(args):
            pair = args[i + 1]
        elif (arg.startswith("-c") and "=" in arg) or (arg.startswith("--") and "=" in arg):
            pair = arg[2:]
        else:
            continue
        name, _, value = pair.partition("=")
        settings[name.replace("-", "_")] = value
    return settings


def role_limit(props: Mapping[str, Any]) -> int:
    """A role's CONNECTION LIMIT; the provider's default is -1 (unlimited)."""
    value = props.get("connectionLimit")
    return -1 if value is None else int(value)


def is_login(props: Mapping[str, Any]) -> bool:
    return bool(props.get("login"))  # the provider's default is NOLOGIN


# --- connection-budget -------------------------------------------------------------------------


def check_connection_budget(args: StackValidationArgs, report: ReportViolation) -> None:
    """The config check's own arithmetic (model.budget.ServerBudget), over the roles actually declared.

    Replication roles are left out, as in the config's budget: their walsenders use max_wal_senders
    slots, not max_connections (PostgreSQL 12+), and our pg_hba admits them to `replication` only.
    """
    config = args.get_config()
    external = [
        Entry(name, None, int(limit), "external") for name, limit in (config.get("externalRoles") or {}).items()
    ]
    # Slots no declared role holds (pgBackRest runs as the superuser), as the config counts them.
    external += [Entry(name, None, int(n), "system") for name, n in (config.get("systemSlots") or {}).items()]
    servers: list[tuple[str | None, str, str | None, dict[str, str]]] = [  # (what, name, urn, settings)
        (_component(r.props), r.name, r.urn, server_settings(r.props.get("command") or []))
        for r in args.resources
        if r.resource_type == CONTAINER and labels(r.props).get(COMPONENT_LABEL) in SERVERS
    ]
    adopted = config.get("adoptedServer")
    if adopted:  # a server the program did not build: its settings as the stack describes (and live_budget checks)
        servers.append(("adopted server", "existing", None, {k: str(v) for k, v in adopted.items()}))
    if not servers:
        args.not_applicable("no Postgres container (label postgres-platform.component=postgres) is declared")
    logins = [
        (r.props["name"], role_limit(r.props))
        for r in args.resources
        if r.resource_type == ROLE and is_login(r.props) and not r.props.get("replication")
    ]
    unbounded = [name for name, limit in logins if limit < 1]
    declared = [Entry(name, None, limit, "app") for name, limit in logins if limit >= 1]
    for where, name, urn, settings in servers:
        budget = ServerBudget(
            name=str(name),
            max_connections=int(settings.get("max_connections", POSTGRES_DEFAULTS["max_connections"])),
            superuser_reserved=int(
                settings.get("superuser_reserved_connections", POSTGRES_DEFAULTS["superuser_reserved_connections"])
            ),
            reserved=int(settings.get("reserved_connections", 0)),
            headroom=int(config.get("adminHeadroom", 0)),
            entries=tuple(declared + external),
        )
        if unbounded:
            report(f"{where} {name}: login roles without a connection limit make the budget unbounded: "
                   f"{', '.join(unbounded)}", urn)  # fmt: skip
        if budget.free < 0:
            shares = [f"{e.role} {e.limit}" + (" (external)" if e.kind == "external" else "") for e in budget.entries]
            reserved = f" - reserved_connections {budget.reserved}" if budget.reserved else ""
            report(
                f"{where} {name}: roles and headroom hold {budget.total + budget.headroom} > {budget.usable} "
                f"usable (max_connections {budget.max_connections} - superuser_reserved_connections "
                f"{budget.superuser_reserved}{reserved}): {', '.join(shares)}, adminHeadroom {budget.headroom}",
                urn,
            )


connection_budget = StackValidationPolicy(
    name="connection-budget",
    description="Login roles' connection limits, external roles and admin headroom fit in max_connections.",
    enforcement_level=EnforcementLevel.MANDATORY,
    validate=check_connection_budget,
    config_schema=PolicyConfigSchema(
        properties={
            "adminHeadroom": {"type": "integer", "minimum": 0},
            "externalRoles": {"type": "object", "additionalProperties": {"type": "integer", "minimum": 1}},
            "systemSlots": {"type": "object", "additionalProperties": {"type": "integer", "minimum": 1}},
            # target existing: the running server's max_connections and superuser_reserved_connections.
            "adoptedServer": {"type": "object", "additionalProperties": {"type": "integer", "minimum": 0}},
        }
    ),
)


# --- bounded-roles -----------------------------------------------------------------------------


def check_bounded_role(args: ResourceValidationArgs, report: ReportViolation) -> None:
    if args.resource_type != ROLE or not is_login(args.props):
        return
    name = args.props["name"]
    if role_limit(args.props) < 1:
        report(f"login role {name} must have connectionLimit >= 1, has {role_limit(args.props)}", None)
    for flag in ("superuser", "createRole", "createDatabase", "bypassRowLevelSecurity"):
        if args.props.get(flag):
            report(f"login role {name} must not have {flag}", None)
    allowed = set(args.get_config().get("replicationRoles") or [])
    if args.props.get("replication") and name not in allowed:
        report(f"login role {name} must not have replication (only {', '.join(sorted(allowed)) or 'none'})", None)


bounded_roles = ResourceValidationPolicy(
    name="bounded-roles",
    description="Login roles are bounded and unprivileged: no superuser, createrole, createdb, bypassrls.",
    enforcement_level=EnforcementLevel.MANDATORY,
    validate=check_bounded_role,
    config_schema=PolicyConfigSchema(properties={"replicationRoles": {"type": "array", "items": {"type": "string"}}}),
)


# --- no-public-database-ports ------------------------------------------------------------------


def port_range(port: str | None) -> tuple[int, int]:
    """Hetzner's `port`: "5432", "5000-6000", "any" or absent (all ports)."""
    if not port or port == "any":
        return 1, 65535
    low, _, high = str(port).partition("-")
    return int(low), int(high or low)


def _covers_database_port(port: str | None) -> list[int]:
    low, high = port_range(port)
    return [p for p in DATABASE_PORTS if low <= p <= high]


def _private_or_loopback(ip: str | None) -> bool:
    if not ip:
        return False  # Docker's default bind is every interface
    try:
        address = ipaddress.ip_address(ip)
    except ValueError:
        return False
    return address.is_loopback or is_private(ipaddress.ip_network(address))


def check_public_ports(args: ResourceValidationArgs, report: ReportViolation) -> None:
    if args.resource_type == FIREWALL:
        # Every inbound rule that reaches a database port, counted together (0.0.0.0/1 + 128.0.0.0/1 is all).
        sources: dict[int, list[str]] = {}
        for rule in args.props.get("rules") or []:
            if rule.get("direction") != "in" or rule.get("protocol") not in ("tcp", None):
                continue
            for port in _covers_database_port(rule.get("port")):
                sources.setdefault(port, []).extend(rule.get("sourceIps") or [])
        for port, cidrs in sorted(sources.items()):
            for wide in too_wide(cidrs):
                report(f"firewall {args.name} opens port {port} to {wide} ({', '.join(cidrs)})", None)
    elif args.resource_type == CONTAINER:
        for binding in args.props.get("ports") or []:
            bound = {int(binding.get("internal") or 0), int(binding.get("external") or 0)} & set(DATABASE_PORTS)
            if bound and not _private_or_loopback(binding.get("ip")):
                report(
                    f"container {args.name} publishes {', '.join(map(str, sorted(bound)))} on "
                    f"{binding.get('ip') or '0.0.0.0 (Docker default)'}: bind a loopback or private address",
                    None,
                )


no_public_database_ports = ResourceValidationPolicy(
    name="no-public-database-ports",
    description="Postgres (5432) and PgBouncer (6432) are never reachable from the whole internet.",
    enforcement_level=EnforcementLevel.MANDATORY,
    validate=check_public_ports,
)


# --- pinned-images -----------------------------------------------------------------------------


def _is_pgbouncer(args: ResourceValidationArgs, image: str) -> bool:
    return _component(args.props) == "pgbouncer" or "pgbouncer" in image.split("@", 1)[0].rsplit("/", 1)[-1]


def check_pinned_image(args: ResourceValidationArgs, report: ReportViolation) -> None:
    key = {REMOTE_IMAGE: "name", CONTAINER: "image"}.get(args.resource_type)
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
)


# --- protected-data ----------------------------------------------------------------------------


def check_protected_data(args: ResourceValidationArgs, report: ReportViolation) -> None:
    hetzner = args.resource_type == HCLOUD_VOLUME
    labelled = args.resource_type == DOCKER_VOLUME and _component(args.props) == "postgres-data"
    if not (hetzner or labelled):
        return
    if not args.opts.protect:
        report(f"volume {args.name} holds PGDATA: set protect so deleting it takes an explicit step", None)
    if hetzner and not args.props.get("deleteProtection"):
        report(f"volume {args.name} holds PGDATA: enable Hetzner delete protection", None)


protected_data = ResourceValidationPolicy(
    name="protected-data",
    description="Volumes holding PGDATA are protected (MANDATORY where the policy config says so, as prod's).",
    enforcement_level=EnforcementLevel.ADVISORY,
    validate=check_protected_data,
)


# --- protected-databases -----------------------------------------------------------------------

DATABASE = "postgresql:index/database:Database"
SCHEMA = "postgresql:index/schema:Schema"


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
)


# --- role-memberships --------------------------------------------------------------------------

GRANT_ROLE = "postgresql:index/grantRole:GrantRole"
# What no role of ours may be made a member of: the superuser, and the predefined roles (server files,
# programs, every table's data, signalling backends...). Ours never start with pg_.
FORBIDDEN_GROUPS = ("postgres",)


def _forbidden(group: str) -> bool:
    return group in FORBIDDEN_GROUPS or group.startswith("pg_")


def check_role_memberships(args: StackValidationArgs, report: ReportViolation) -> None:
    """Memberships only in NOLOGIN roles the program declares: never the superuser, a pg_* role, or a
    role from elsewhere (inheriting it would carry privileges no plan shows)."""
    roles = {r.props["name"]: r for r in args.resources if r.resource_type == ROLE}
    groups = {name for name, r in roles.items() if not is_login(r.props)}

    def judge(member: str, group: str, urn: str) -> None:
        if _forbidden(group):
            report(f"role {member} must not be a member of {group}: superuser or predefined (pg_*) role", urn)
        elif group not in groups:
            report(f"role {member} must not be a member of {group}: not a group role this stack declares", urn)

    for name, resource in roles.items():
        for group in resource.props.get("roles") or []:
            judge(name, group, resource.urn)
    for grant in (r for r in args.resources if r.resource_type == GRANT_ROLE):
        member, group = grant.props.get("role"), grant.props.get("grantRole")
        judge(str(member), str(group), grant.urn)
        if member in roles:
            report(f"GrantRole {grant.name}: {member} is declared here, so set its membership in its Role's `roles` "
                   "(the provider revokes memberships not listed there)", grant.urn)  # fmt: skip


role_memberships = StackValidationPolicy(
    name="role-memberships",
    description="Roles are members only of group roles the stack declares: never postgres or a pg_* role.",
    enforcement_level=EnforcementLevel.MANDATORY,
    validate=check_role_memberships,
)


# --- sql-steps ---------------------------------------------------------------------------------

SQL_STEPS = {
    "pulumi-python:dynamic/postgres-platform:SqlApply": ("sql", "check"),
    "pulumi-python:dynamic/postgres-platform:RoleRetirement": ("statements",),
}
# Statements that make or widen a role, or reach the server's files and programs: never in our steps.
ESCALATING = re.compile(
    r"\b(CREATE|ALTER)\s+(ROLE|USER|GROUP)\b|\bSUPERUSER\b|\bGRANT\b|\bALTER\s+SYSTEM\b|\bCOPY\b|\bLO_IMPORT\b"
    r"|\bSET\s+(SESSION\s+)?ROLE\b|\bSECURITY\s+DEFINER\b",
    re.IGNORECASE,
)


def check_sql_steps(args: ResourceValidationArgs, report: ReportViolation) -> None:
    """A dynamic resource runs whatever code it carries: only the program's own two SQL steps, and their
    SQL may only harden and revoke (REVOKE, ALTER FUNCTION ... SET search_path, REASSIGN/DROP OWNED)."""
    if not args.resource_type.startswith("pulumi-python:dynamic"):
        return
    fields = SQL_STEPS.get(args.resource_type)
    if fields is None:
        report(f"{args.name}: dynamic resource {args.resource_type} is not one of the program's SQL steps", None)
        return
    for field in fields:
        value = args.props.get(field)
        texts = list(value.values()) if isinstance(value, Mapping) else [value]
        for text in texts:
            if match := ESCALATING.search(str(text or "")):
                report(f"{args.name}: its {field} runs {match.group(0)!r}: the SQL steps only harden and revoke", None)


sql_steps = ResourceValidationPolicy(
    name="sql-steps",
    description="Dynamic resources are only the program's SQL steps, and those never create or widen a role.",
    enforcement_level=EnforcementLevel.MANDATORY,
    validate=check_sql_steps,
)


# --- host-network-listeners --------------------------------------------------------------------

EVERY_INTERFACE = ("*", "0.0.0.0", "::")


def check_host_network_listeners(args: StackValidationArgs, report: ReportViolation) -> None:
    """A Postgres container on the host's network that listens on every interface is reachable on the
    public one: only behind a firewall whose database rules stay narrow (no-public-database-ports)."""
    firewalled = any(r.resource_type == FIREWALL for r in args.resources)
    for server in args.resources:
        if server.resource_type != CONTAINER or _component(server.props) not in SERVERS:
            continue
        if server.props.get("networkMode") != "host":
            continue
        listen = server_settings(server.props.get("command") or []).get("listen_addresses", "localhost")
        everywhere = any(part.strip() in EVERY_INTERFACE for part in listen.split(","))
        if everywhere and not firewalled:
            fix = "name the addresses in listen_addresses, or put the host behind one"
            report(f"container {server.name} listens on every interface ({listen!r}) with no firewall declared: {fix}",
                   server.urn)  # fmt: skip


host_network_listeners = StackValidationPolicy(
    name="host-network-listeners",
    description="A host-network Postgres listening on every interface must sit behind a declared firewall.",
    enforcement_level=EnforcementLevel.MANDATORY,
    validate=check_host_network_listeners,
)


# --- backups-configured ------------------------------------------------------------------------

SERVER = "hcloud:index/server:Server"


def check_backups(args: StackValidationArgs, report: ReportViolation) -> None:
    """Read from what runs: the primary's `archive_mode`, the stanza command (encryption) and, on a
    Hetzner stack, the scheduled backup command (an s3 repository, retention)."""
    hetzner = any(r.resource_type == SERVER for r in args.resources)
    commands = [r for r in args.resources if r.resource_type in COMMANDS]
    stanzas = [c for c in commands if "stanza-create" in str(c.props.get("create") or "")]
    timers = [c for c in commands if "--type=full backup" in str(c.props.get("create") or "")]
    if not hetzner and not stanzas:
        args.not_applicable("no backups declared (they are required on Hetzner stacks)")
    primaries = [r for r in args.resources if r.resource_type == CONTAINER and _component(r.props) == "postgres"]
    for server in primaries:
        if server_settings(server.props.get("command") or []).get("archive_mode") != "on":
            report(f"container {server.name}: archive_mode is not on: no point-in-time recovery", server.urn)
    if not stanzas:
        report("no pgBackRest stanza is created: backups are not configured (backup: in the stack config)", None)
    for stanza in stanzas:
        if "--repo1-cipher-type=aes-256-cbc" not in str(stanza.props.get("create")):
            report(f"{stanza.name}: the repository is not encrypted (--repo1-cipher-type=aes-256-cbc)", stanza.urn)
    if hetzner:
        if not timers:
            report("no scheduled full backup on the host (the backup timers)", None)
        for timer in timers:
            text = str(timer.props.get("create"))
            if "--repo1-type=s3" not in text:
                report(f"{timer.name}: backups must go to object storage off the host (--repo1-type=s3)", timer.urn)
            if "--repo1-retention-full=" not in text:
                report(f"{timer.name}: no retention (--repo1-retention-full)", timer.urn)


backups_configured = StackValidationPolicy(
    name="backups-configured",
    description="Archiving on, an encrypted pgBackRest stanza; on Hetzner, scheduled backups to S3 with retention.",
    enforcement_level=EnforcementLevel.MANDATORY,
    validate=check_backups,
)


# --- secret-outputs ----------------------------------------------------------------------------


def _generated(resource: PolicyResource, prop: str) -> bool:
    return any(d.resource_type == RANDOM_PASSWORD for d in resource.property_dependencies.get(prop, []))


def _plaintext_password(resource: PolicyResource) -> bool:
    """The program sets every role from its password's SCRAM verifier. At `up` the value is known: anything
    else was swapped in (say a literal inside an apply that still depends on the RandomPassword). At
    preview it is unknown and this decides nothing (the dependency check above still does)."""
    try:
        password = resource.props.get("password")
    except UnknownValueError:
        return False
    return isinstance(password, str) and not password.startswith("SCRAM-SHA-256$")


def check_secret_sources(args: StackValidationArgs, report: ReportViolation) -> None:
    """What the SDK can see: every password input flows from a RandomPassword, none is a literal.

    The analyzer unwraps secrets before policies run, so whether a stack output is marked secret is
    invisible here; tests/program/test_program.py proves that instead (README, "Policies").
    """
    for resource in args.resources:
        if resource.resource_type == ROLE and is_login(resource.props) and not _generated(resource, "password"):
            report(f"login role {resource.props['name']}: its password must come from a RandomPassword", resource.urn)
        if resource.resource_type == ROLE and is_login(resource.props) and _plaintext_password(resource):
            report(f"login role {resource.props['name']}: its password is not a SCRAM verifier: a literal replaced "
                   "the generated one, or plaintext would reach the server's log", resource.urn)  # fmt: skip
        # The superuser password reaches the image as a file (POSTGRES_PASSWORD_FILE), written with the
        # other config files: never in the environment, where `docker inspect` shows it.
        if resource.resource_type == CONTAINER and _component(resource.props) in SERVERS:
            for env in resource.props.get("envs") or []:
                if str(env).startswith("POSTGRES_PASSWORD="):
                    report(f"container {resource.name}: the superuser password is in its environment: use "
                           "POSTGRES_PASSWORD_FILE", resource.urn)  # fmt: skip
        written = resource.resource_type in COMMANDS and resource.name.endswith("-config-write")
        if written and not _generated(resource, "stdin"):
            report(f"config files {resource.name}: their secrets must come from a RandomPassword", resource.urn)


secret_outputs = StackValidationPolicy(
    name="secret-outputs",
    description="Passwords are generated (RandomPassword), never literals in code or config.",
    enforcement_level=EnforcementLevel.MANDATORY,
    validate=check_secret_sources,
)

POLICIES = [
    connection_budget,
    bounded_roles,
    no_public_database_ports,
    pinned_images,
    protected_data,
    protected_databases,
    secret_outputs,
    role_memberships,
    sql_steps,
    host_network_listeners,
    backups_configured,
]
