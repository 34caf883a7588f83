"""Roles: the connection budget over the declared login roles, bounded login roles, and memberships."""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any, NamedTuple

from pulumi_policy import (
    EnforcementLevel,
    PolicyConfigSchema,
    ReportViolation,
    ResourceValidationArgs,
    ResourceValidationPolicy,
    StackValidationArgs,
    StackValidationPolicy,
)

from policy.resources import GRANT_ROLE, ROLE, component, is_login, postgres_servers, role_limit, settings_in_stack
from postgres_platform.model.budget import Entry, ServerBudget
from postgres_platform.model.names import COMPONENT_LABEL, MONITORING_ROLE, PG_MONITOR, PRIMARY, SUPERUSER

POSTGRES_DEFAULTS = {"max_connections": "100", "superuser_reserved_connections": "3"}

# --- connection-budget -------------------------------------------------------------------------


class Server(NamedTuple):
    what: str | None  # its COMPONENT_LABEL value, or "adopted server"
    name: str
    urn: str | None
    settings: dict[str, str]


def _servers(args: StackValidationArgs) -> list[Server]:
    servers = [
        Server(component(r.props), r.name, r.urn, settings_in_stack(r, args.resources))
        for r in postgres_servers(args.resources)
    ]
    adopted = args.get_config().get("adoptedServer")
    if adopted:  # a server the program did not build: its settings as the stack describes (and live_budget checks)
        servers.append(Server("adopted server", "existing", None, {k: str(v) for k, v in adopted.items()}))
    return servers


def _configured(config: Mapping[str, Any]) -> list[Entry]:
    """The external roles, and the slots no declared role holds (pgBackRest runs as the superuser), as the
    config counts them."""
    external = [
        Entry(name, None, int(limit), "external") for name, limit in (config.get("externalRoles") or {}).items()
    ]
    return external + [Entry(name, None, int(n), "system") for name, n in (config.get("systemSlots") or {}).items()]


def _budget(server: Server, config: Mapping[str, Any], entries: tuple[Entry, ...]) -> ServerBudget:
    settings = server.settings
    return ServerBudget(
        name=str(server.name),
        max_connections=int(settings.get("max_connections", POSTGRES_DEFAULTS["max_connections"])),
        superuser_reserved=int(
            settings.get("superuser_reserved_connections", POSTGRES_DEFAULTS["superuser_reserved_connections"])
        ),
        reserved=int(settings.get("reserved_connections", 0)),
        headroom=int(config.get("adminHeadroom", 0)),
        entries=entries,
    )


def _overdrawn(server: Server, budget: ServerBudget) -> str:
    shares = [f"{e.role} {e.limit}" + (" (external)" if e.kind == "external" else "") for e in budget.entries]
    reserved = f" - reserved_connections {budget.reserved}" if budget.reserved else ""
    return (
        f"{server.what} {server.name}: roles and headroom hold {budget.total + budget.headroom} > {budget.usable} "
        f"usable (max_connections {budget.max_connections} - superuser_reserved_connections "
        f"{budget.superuser_reserved}{reserved}): {', '.join(shares)}, adminHeadroom {budget.headroom}"
    )


def check_connection_budget(args: StackValidationArgs, report: ReportViolation) -> None:
    """The config check's own arithmetic (model.budget.ServerBudget), over the roles actually declared.

    Replication roles are left out, as in the config's budget: their walsenders use max_wal_senders
    slots, not max_connections (PostgreSQL 12+), and our pg_hba admits them to `replication` only.
    """
    config = args.get_config()
    servers = _servers(args)
    if not servers:
        args.not_applicable(f"no Postgres container (label {COMPONENT_LABEL}={PRIMARY}) is declared")
    logins = [
        (r.props["name"], role_limit(r.props))
        for r in args.resources
        if r.resource_type == ROLE and is_login(r.props) and not r.props.get("replication")
    ]
    unbounded = [name for name, limit in logins if limit < 1]
    entries = tuple([Entry(name, None, limit, "app") for name, limit in logins if limit >= 1] + _configured(config))
    for server in servers:
        budget = _budget(server, config, entries)
        if unbounded:
            report(
                f"{server.what} {server.name}: login roles without a connection limit make the budget unbounded: "
                f"{', '.join(unbounded)}",
                server.urn,
            )
        if budget.free < 0:
            report(_overdrawn(server, budget), server.urn)


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
    remediation_steps=(
        "Give every login role a connectionLimit of at least 1, and make the apps' connectionLimit, externalRoles "
        "and adminHeadroom fit max_connections - superuser_reserved_connections - reserved_connections: lower a "
        "limit, or raise postgres.maxConnections in the stack config."
    ),
)


# --- bounded-roles -----------------------------------------------------------------------------

PRIVILEGES = ("superuser", "createRole", "createDatabase", "bypassRowLevelSecurity")  # no login role has one


def check_bounded_role(args: ResourceValidationArgs, report: ReportViolation) -> None:
    if args.resource_type != ROLE or not is_login(args.props):
        return
    name = args.props["name"]
    if role_limit(args.props) < 1:
        report(f"login role {name} must have connectionLimit >= 1, has {role_limit(args.props)}", None)
    for flag in PRIVILEGES:
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
    remediation_steps=(
        "Give the login role a connectionLimit of at least 1 and none of superuser, createRole, createDatabase, "
        "bypassRowLevelSecurity; replication only for a role the policy config's replicationRoles names."
    ),
)


# --- role-memberships --------------------------------------------------------------------------


# The one predefined membership the program grants: its monitoring role reads the statistics views
# (pg_monitor: pg_read_all_stats, pg_read_all_settings, pg_stat_scan_tables), no table's data.
ALLOWED_PREDEFINED = {(MONITORING_ROLE, PG_MONITOR)}


def _forbidden(group: str, member: str = "") -> bool:
    """The superuser, and the predefined roles (server files, programs, every table's data, signalling
    backends...): no role of ours may be a member of one, but the monitoring role of pg_monitor. Ours
    never start with pg_."""
    if (member, group) in ALLOWED_PREDEFINED:
        return False
    return group == SUPERUSER or group.startswith("pg_")


def check_role_memberships(args: StackValidationArgs, report: ReportViolation) -> None:
    """Memberships only in NOLOGIN roles the program declares: never the superuser, a pg_* role, or a
    role from elsewhere (inheriting it would carry privileges no plan shows)."""
    roles = {r.props["name"]: r for r in args.resources if r.resource_type == ROLE}
    groups = {name for name, r in roles.items() if not is_login(r.props)}

    def judge(member: str, group: str, urn: str) -> None:
        if _forbidden(group, member):
            report(f"role {member} must not be a member of {group}: superuser or predefined (pg_*) role", urn)
        elif group not in groups and (member, group) not in ALLOWED_PREDEFINED:
            report(f"role {member} must not be a member of {group}: not a group role this stack declares", urn)

    for name, resource in roles.items():
        for group in resource.props.get("roles") or []:
            judge(name, group, resource.urn)
    for grant in (r for r in args.resources if r.resource_type == GRANT_ROLE):
        member, group = grant.props.get("role"), grant.props.get("grantRole")
        judge(str(member), str(group), grant.urn)
        if member in roles:
            report(
                f"GrantRole {grant.name}: {member} is declared here, so set its membership in its Role's `roles` "
                "(the provider revokes memberships not listed there)",
                grant.urn,
            )


role_memberships = StackValidationPolicy(
    name="role-memberships",
    description=(
        "Roles are members only of group roles the stack declares: never postgres or a pg_* role "
        "(but the monitoring role, of pg_monitor)."
    ),
    enforcement_level=EnforcementLevel.MANDATORY,
    validate=check_role_memberships,
    remediation_steps=(
        "Make a role a member only of NOLOGIN group roles this stack declares, never of postgres or a pg_* role; "
        "set the memberships of a role the stack declares in its Role's `roles`, not with a GrantRole."
    ),
)
