"""What one field cannot know alone: references between sections, what a target needs, name clashes.

One check per section of the stack config, run in the order of `cross_checks`; the role names are
checked last, once every reference is known to hold.
"""

from __future__ import annotations

import ipaddress

from postgres_platform.model.config.errors import problem
from postgres_platform.model.config.schema import PlatformConfig
from postgres_platform.model.config.targets import ExistingConfig, FailoverConfig, HetznerConfig
from postgres_platform.model.config.types import IDENTIFIER, level_of
from postgres_platform.model.names import (
    AUTH_ROLE,
    MAX_IDENTIFIER_BYTES,
    MONITORING_ROLE,
    PGBOUNCER_ADMIN,
    PGBOUNCER_PORT,
    POSTGRES_PORT,
    REPLICATION_ROLE,
    REWIND_ROLE,
    group_role,
    owner_role,
)
from postgres_platform.model.networks import is_private, too_wide
from postgres_platform.model.settings import setting_problem

# Settings that have their own typed key; a second way to set them would let the budget lie.
TYPED_SETTINGS = {
    "max_connections": "postgres.maxConnections",
    "superuser_reserved_connections": "postgres.superuserReservedConnections",
}
# On a host that holds real data (every Hetzner stack), what may lose it or weaken logins: value -> why.
UNSAFE_ON_HOSTS = {
    "fsync": ("off", "a crash can corrupt the database"),
    "full_page_writes": ("off", "a crash can leave torn pages"),
}
HOSTS_NEED_ADDRESSES = 16  # the primary at .10, the replica at .11, and the broadcast address: a /28
SSH_PORT = 22
# Ports a database host already listens on, by what they are: the cluster's own ports must be others.
HOST_PORTS = {SSH_PORT: "SSH's port", POSTGRES_PORT: "Postgres' port", PGBOUNCER_PORT: "PgBouncer's port"}
# Role names the program keeps for itself, by what they are.
SYSTEM_ROLES = {
    AUTH_ROLE: "the PgBouncer auth role",
    PGBOUNCER_ADMIN: "the PgBouncer admin user",
    REPLICATION_ROLE: "the replication role",
    REWIND_ROLE: "Patroni's pg_rewind role",
    MONITORING_ROLE: "the exporters' monitoring role",
}
# A derived role: (the key it comes from, its definition: database, level and schemas).
Derived = dict[str, tuple[str, tuple[str, ...]]]


def cross_checks(config: PlatformConfig) -> list[str]:
    """Every problem of a config whose fields are each valid, section by section."""
    problems = [
        *_postgres_checks(config),
        *_database_checks(config),
        *_app_checks(config),
        *_pgbouncer_checks(config),
        *_local_checks(config),
        *_target_section_checks(config),
        *_monitoring_checks(config),
    ]
    if config.adopted:
        problems += _existing_checks(config)
    else:
        problems += _built_server_checks(config) + _backup_checks(config) + _settings_checks(config)
    problems += _hetzner_checks(config)
    if problems:
        return problems  # the derived names below need known databases and schemas
    return _role_name_checks(config)


def _postgres_checks(config: PlatformConfig) -> list[str]:
    pg = config.postgres
    problems = []
    if pg.superuser_reserved_connections >= pg.max_connections:
        message = f"must be less than postgres.maxConnections ({pg.max_connections})"
        problems.append(problem("postgres.superuserReservedConnections", message, pg.superuser_reserved_connections))
    for setting, key in TYPED_SETTINGS.items():
        if setting in pg.settings:
            problems.append(problem(f"postgres.settings.{setting}", f"set {key} instead", pg.settings[setting]))
    reserved = pg.settings.get("reserved_connections", 0)
    if isinstance(reserved, bool) or not isinstance(reserved, int) or not 0 <= reserved < pg.max_connections:
        # Counted in the budget (it takes slots from every role but pg_use_reserved_connections'): so it
        # must be a number the budget can count.
        message = "must be an integer >= 0 and below maxConnections (the budget counts it)"
        problems.append(problem("postgres.settings.reserved_connections", message, reserved))
    return problems


def _database_checks(config: PlatformConfig) -> list[str]:
    problems = []
    for name, db in config.databases.items():
        if len(set(db.schemas)) != len(db.schemas):
            problems.append(problem(f"databases.{name}.schemas", "lists a schema twice", db.schemas))
        for i, table in enumerate(db.migration_tables or ()):
            schema, _, rest = table.partition(".")
            key = f"databases.{name}.migrationTables[{i}]"
            if not rest or not IDENTIFIER.match(rest):
                problems.append(problem(key, "must be schema.table", table))
            elif schema not in db.schemas:
                message = f"schema {schema} is not one of {name}'s schemas ({', '.join(db.schemas)})"
                problems.append(problem(key, message, table))
    return problems


def _app_checks(config: PlatformConfig) -> list[str]:
    """Each app's database and schemas exist; then each pooled app leaves its pool a connection."""
    problems = []
    for app, spec in config.apps.items():
        if spec.database not in config.databases:
            known = ", ".join(config.databases)
            problems.append(problem(f"apps.{app}.database", f"unknown database (known: {known})", spec.database))
            continue
        db_schemas = config.databases[spec.database].schemas
        for i, schema in enumerate(spec.schemas or ()):
            if schema not in db_schemas:
                message = f"not a schema of {spec.database} ({', '.join(db_schemas)})"
                problems.append(problem(f"apps.{app}.schemas[{i}]", message, schema))
    for app, spec in config.apps.items():
        if spec.pooled and config.pgbouncer is not None and spec.direct_slots() >= spec.connection_limit:
            message = f"must leave the pool at least one of its connectionLimit {spec.connection_limit}"
            problems.append(problem(f"apps.{app}.directConnections", message, spec.direct_slots()))
    return problems


def _pgbouncer_checks(config: PlatformConfig) -> list[str]:
    explicit = config.pgbouncer.auth_connection_limit if config.pgbouncer is not None else None
    if explicit is None or explicit >= config.minimum_auth_role_limit():
        return []
    message = (
        f"must be at least {config.minimum_auth_role_limit()}: PgBouncer keeps one lookup connection per app "
        "pool and opens a new one while an old one closes"
    )
    return [problem("pgbouncer.authConnectionLimit", message, explicit)]


def _local_checks(config: PlatformConfig) -> list[str]:
    ports = config.local_ports()
    if ports.postgres_port != ports.pgbouncer_port:
        return []
    return [problem("local.pgbouncerPort", "must differ from local.postgresPort", ports.pgbouncer_port)]


def _target_section_checks(config: PlatformConfig) -> list[str]:
    """A target's own section is only for that target."""
    sections = {"local": config.local, "hetzner": config.hetzner, "existing": config.existing}
    return [
        problem(section, f"does not belong to target {config.target}: remove it", value.model_dump(by_alias=True))
        for section, value in sections.items()
        if value is not None and section != config.target
    ]


def _monitoring_checks(config: PlatformConfig) -> list[str]:
    """The exporters only beside a server the program runs; Alertmanager only with Prometheus; one receiver's
    settings; every port its own and none of the host's (they share a host network on Hetzner)."""
    m = config.monitoring
    problems = []
    if config.adopted and m.exporters:
        why = "must be false for target existing (the server is not ours to run beside)"
        problems.append(problem("monitoring.exporters", why, True))
    if m.prometheus and not config.exporters_run():
        problems.append(problem("monitoring.prometheus", "needs monitoring.exporters (nothing to scrape)", True))
    return problems + _alertmanager_checks(config) + _monitoring_port_checks(config)


def _alertmanager_checks(config: PlatformConfig) -> list[str]:
    am = config.monitoring.alertmanager
    if am is None:
        return []
    problems = []
    if not config.monitoring.prometheus:
        problems.append(problem("monitoring.alertmanager", "needs monitoring.prometheus true", am.receiver))
    if am.receiver == "email" and am.email is None:
        problems.append(problem("monitoring.alertmanager.email", "is required with receiver email", None))
    if am.receiver != "email" and am.email is not None:
        problems.append(
            problem("monitoring.alertmanager.email", f"is only for receiver email, not {am.receiver}", am.email.to)
        )
    return problems


def _monitoring_port_checks(config: PlatformConfig) -> list[str]:
    taken = dict(HOST_PORTS)
    if config.target == "local":
        local = config.local_ports()
        taken |= {local.postgres_port: "local.postgresPort", local.pgbouncer_port: "local.pgbouncerPort"}
    if config.hetzner is not None and config.hetzner.failover.enabled:
        taken |= {port: key for key, port in config.hetzner.failover.ports().items()}
    problems = []
    for key, port in config.monitoring.ports().items():
        if port in taken:
            problems.append(problem(key, f"must differ from {taken[port]}", port))
        taken.setdefault(port, key)
    return problems


def _existing_checks(config: PlatformConfig) -> list[str]:
    """Target existing: an adopted server, its PgBouncer if any, and the objects that keep their owner."""
    existing = config.existing
    if existing is None:
        return [problem("existing", "is required when target is existing", None)]
    return (
        _adopted_server_checks(config)
        + _adopted_pgbouncer_checks(config, existing)
        + _keep_owner_checks(config, existing)
        + _admin_address_checks(existing)
    )


def _admin_address_checks(existing: ExistingConfig) -> list[str]:
    """The admin's addresses, which the server's pg_hba.conf should admit the admin from (and from nowhere
    else): a small known range, and only where the admin is a superuser (a managed server's pg_hba is the
    provider's)."""
    cidrs = existing.admin_cidrs
    if cidrs is None:
        return []
    if not existing.admin_superuser:
        message = "needs existing.adminSuperuser: a managed server's pg_hba.conf is the provider's"
        return [problem("existing.adminCidrs", message, cidrs)]
    return [problem("existing.adminCidrs", f"together admit the admin from {wide}", cidrs) for wide in too_wide(cidrs)]


def _adopted_server_checks(config: PlatformConfig) -> list[str]:
    not_ours = "must be absent for target existing: the program does not run that server"
    problems = []
    if config.postgres.image is not None:
        problems.append(problem("postgres.image", f"{not_ours} (live_budget.py checks it)", config.postgres.image))
    if config.postgres.settings:
        problems.append(problem("postgres.settings", f"{not_ours} or set its settings", config.postgres.settings))
    if config.backup is not None:
        problems.append(problem("backup", f"{not_ours}: keep its own backups", config.backup.repo))
    return problems


def _adopted_pgbouncer_checks(config: PlatformConfig, existing: ExistingConfig) -> list[str]:
    """A PgBouncer next to an adopted server needs its host and a superuser; without one, no app is pooled."""
    problems = []
    if config.pgbouncer is None:
        if existing.pgbouncer_host is not None:
            problems.append(problem("pgbouncer", "is required with existing.pgbouncerHost (its pools)", None))
        for app, spec in config.apps.items():
            if "pooled" in spec.model_fields_set and spec.pooled:
                problems.append(problem(f"apps.{app}.pooled", "must be false without a pgbouncer section", True))
        return problems
    if existing.pgbouncer_host is None:
        problems.append(problem("existing.pgbouncerHost", "is required with a pgbouncer section", None))
    if not existing.admin_superuser:
        # PgBouncer's lookup function reads pg_authid: only a superuser may create it.
        message = "needs existing.adminSuperuser: its auth_query function reads pg_authid (superuser only)"
        problems.append(problem("pgbouncer", message, config.pgbouncer.model_dump(by_alias=True)))
    return problems


def _keep_owner_checks(config: PlatformConfig, existing: ExistingConfig) -> list[str]:
    problems = []
    for i, kept in enumerate(existing.keep_owners):
        parts = kept.split(".")
        if len(parts) != 3 or not all(IDENTIFIER.fullmatch(p) for p in parts):
            problems.append(problem(f"existing.keepOwners[{i}]", "must be database.schema.object", kept))
        elif parts[0] not in config.databases or parts[1] not in config.databases[parts[0]].schemas:
            problems.append(problem(f"existing.keepOwners[{i}]", "names no declared database and schema", kept))
    return problems


def _built_server_checks(config: PlatformConfig) -> list[str]:
    """A server the program runs needs its image and a PgBouncer."""
    problems = []
    if config.postgres.image is None:
        problems.append(problem("postgres.image", f"is required when target is {config.target}", None))
    if config.pgbouncer is None:
        problems.append(problem("pgbouncer", f"is required when target is {config.target}", None))
    return problems


def _backup_checks(config: PlatformConfig) -> list[str]:
    backup = config.backup
    if backup is None:
        if config.target == "hetzner":
            return [
                problem(
                    "backup",
                    "is required for every Hetzner stack (pgBackRest to S3: docs/operations/backups-and-restore.md)",
                    None,
                )
            ]
        return []
    problems = []
    if backup.repo == "s3" and backup.s3 is None:
        problems.append(problem("backup.s3", "is required when backup.repo is s3", None))
    if backup.repo == "posix" and config.target == "hetzner":
        # A repository on the database host is lost with it: off-host object storage only.
        problems.append(problem("backup.repo", "must be s3 on Hetzner (a posix repo dies with its host)", "posix"))
    return problems


def _settings_checks(config: PlatformConfig) -> list[str]:
    """Each extra setting as the shipped server would read it (model/settings.py, its pg_settings);
    on Hetzner, none that trades durability or login security away."""
    settings = config.postgres.settings
    problems = [
        problem(f"postgres.settings.{name}", message, value)
        for name, value in settings.items()
        if (message := setting_problem(name, value)) is not None
    ]
    if config.target != "hetzner":
        return problems
    for name, (unsafe, why) in UNSAFE_ON_HOSTS.items():
        if name in settings and str(settings[name]).lower() in (unsafe, "false", "no", "0"):
            message = f"must stay on on a Hetzner stack: {why}"
            problems.append(problem(f"postgres.settings.{name}", message, settings[name]))
    encryption = settings.get("password_encryption", "scram-sha-256")
    if str(encryption).lower() != "scram-sha-256":
        message = "must be scram-sha-256 (PgBouncer's auth_query and the stable verifiers rely on it)"
        problems.append(problem("postgres.settings.password_encryption", message, encryption))
    return problems


def _hetzner_checks(config: PlatformConfig) -> list[str]:
    if config.target != "hetzner":
        return []
    if config.hetzner is None:
        return [problem("hetzner", "is required when target is hetzner", None)]
    return _network_checks(config.hetzner) + _failover_checks(config.hetzner)


def _failover_checks(hetzner: HetznerConfig) -> list[str]:
    """Patroni needs a replica to promote, etcd an odd number of members, and ports of their own."""
    failover = hetzner.failover
    if not failover.enabled:
        return []
    problems = []
    if not hetzner.replicas:
        if failover.synchronous:
            message = "synchronous_mode with no replica: no commit could be acknowledged (set hetzner.replicas 1)"
            problems.append(problem("hetzner.failover.synchronousMode", message, True))
        else:
            message = "failover with no replica: nothing to promote (set hetzner.replicas 1)"
            problems.append(problem("hetzner.failover.enabled", message, True))
        return problems  # the member count and the rest follow from a replica: one line says it
    if failover.synchronous_mode_strict and not failover.synchronous_mode:
        message = (
            "needs hetzner.failover.synchronousMode true (writes would wait for a standby nothing makes synchronous)"
        )
        problems.append(problem("hetzner.failover.synchronousModeStrict", message, True))
    members = len(hetzner.etcd_member_ips())
    if members % 2 == 0:
        message = (
            f"makes {members} etcd members ({1 + hetzner.replicas} database hosts and {failover.witnesses} "
            f"witnesses): an even number survives no more lost members than one fewer, use an odd total"
        )
        problems.append(problem("hetzner.failover.witnesses", message, failover.witnesses))
    if failover.ttl < failover.loop_wait + 2 * failover.retry_timeout:
        message = f"must be at least loopWait + 2 x retryTimeout ({failover.loop_wait + 2 * failover.retry_timeout})"
        problems.append(problem("hetzner.failover.ttl", message, failover.ttl))
    return problems + _cluster_port_checks(failover)


def _cluster_port_checks(failover: FailoverConfig) -> list[str]:
    """Each of Patroni's and etcd's ports is its own: not SSH's, Postgres', PgBouncer's or another's."""
    problems = []
    taken = dict(HOST_PORTS)
    for key, port in failover.ports().items():
        if port in taken:
            problems.append(problem(key, f"clashes with {taken[port]}", port))
        else:
            taken[port] = key
    return problems


def _network_checks(hetzner: HetznerConfig) -> list[str]:
    problems: list[str] = []
    ip_range = ipaddress.ip_network(hetzner.ip_range)
    subnet = ipaddress.ip_network(hetzner.subnet)
    for key, network in (("hetzner.ipRange", ip_range), ("hetzner.subnet", subnet)):
        if network.version != 4 or not is_private(network):
            problems.append(problem(key, "must be a private IPv4 range (10/8, 172.16/12, 192.168/16)", str(network)))
    if subnet.version != ip_range.version or not subnet.subnet_of(ip_range):  # type: ignore[arg-type]
        problems.append(
            problem("hetzner.subnet", f"must lie inside hetzner.ipRange ({hetzner.ip_range})", hetzner.subnet)
        )
    if subnet.num_addresses < HOSTS_NEED_ADDRESSES:
        problems.append(
            problem("hetzner.subnet", "must hold the hosts at .10 and .11: a /28 or larger", hetzner.subnet)
        )
    problems += admin_cidr_problems(hetzner.admin_cidrs)
    return problems


def admin_cidr_problems(cidrs: list[str]) -> list[str]:
    """SSH and 5432 are open to the union of these: it must stay a small, known range."""
    return [problem("hetzner.adminCidrs", f"together open {wide} to SSH and 5432", cidrs) for wide in too_wide(cidrs)]


def _role_name_checks(config: PlatformConfig) -> list[str]:
    """Every role the program derives, by what defines it: one name must never stand for two things."""
    derived, problems = _derived_roles(config)
    taken = dict(SYSTEM_ROLES)  # role -> what it is
    for role, (key, definition) in derived.items():
        if len(role.encode()) > MAX_IDENTIFIER_BYTES:
            problems.append(problem(key, f"derived role name {role} is longer than {MAX_IDENTIFIER_BYTES} bytes", role))
        taken.setdefault(role, f"the {definition[1]} role of database {definition[0]}")
    for app in config.apps:
        problems += _app_name_checks(config, app, taken)
    return problems + _external_role_checks(config, taken)


def _derived_roles(config: PlatformConfig) -> tuple[Derived, list[str]]:
    """The owner and group roles of the databases and the apps' groups; an app's group may not be
    another group's name."""
    derived: Derived = {}
    for database, database_config in config.databases.items():
        derived[owner_role(database)] = (f"databases.{database}", (database, "owner"))
        for level in ("read", "write"):
            definition = (database, level, *database_config.schemas)
            derived[group_role(database, level)] = (f"databases.{database}", definition)
    problems = []
    for app, spec in config.apps.items():
        schemas = config.ordered_schemas(spec.database, config.app_schemas(app))
        definition = (spec.database, level_of(spec.access), *schemas)
        group = config.app_group(app)
        _, existing = derived.setdefault(group, (f"apps.{app}.schemas", definition))
        if existing != definition:
            message = f"its group role {group} names another group too"
            problems.append(problem(f"apps.{app}.schemas", message, spec.schemas))
    return derived, problems


def _app_name_checks(config: PlatformConfig, app: str, taken: dict[str, str]) -> list[str]:
    problems = _login_checks(config, app, taken) if config.apps[app].rotation is not None else []
    if app in config.databases:
        # PgBouncer names each app's pool database after the app (render.pgbouncer.pools).
        problems.append(problem(f"apps.{app}", "an app may not be named like a database", app))
    if app in taken:
        problems.append(problem(f"apps.{app}", f"role name is taken by {taken[app]}", app))
    return problems


def _login_checks(config: PlatformConfig, app: str, taken: dict[str, str]) -> list[str]:
    """An app's alternating logins, `<app>_a` and `<app>_b`: names that fit and are no other role's."""
    problems = []
    for login in config.logins(app):
        if len(login.role.encode()) > MAX_IDENTIFIER_BYTES:
            message = f"login role {login.role} is longer than {MAX_IDENTIFIER_BYTES} bytes"
            problems.append(problem(f"apps.{app}.rotation", message, app))
        if login.role in taken or login.role in config.apps or login.role in config.external_roles:
            problems.append(problem(f"apps.{app}.rotation", f"login role {login.role} is another role's name", app))
    return problems


def _external_role_checks(config: PlatformConfig, taken: dict[str, str]) -> list[str]:
    problems = []
    for role in config.external_roles:
        if role in config.apps:
            problems.append(problem(f"externalRoles.{role}", f"role name is also an app (apps.{role})", role))
        elif role in taken:
            problems.append(problem(f"externalRoles.{role}", f"role name is taken by {taken[role]}", role))
    return problems
