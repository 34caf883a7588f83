"""The stack config: parsed and validated once, before any resource is declared.

Every problem becomes one line `key.path: what is wrong, got <value>`; all lines are reported together
so an operator fixes a stack file in one round. Pure: `model.load` feeds it the namespace's values
(from Pulumi or straight from a stack file) and adds the budget check.
"""

from __future__ import annotations

import ipaddress
import json
import re
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Annotated, Any, Literal

from pydantic import (
    AfterValidator,
    BaseModel,
    BeforeValidator,
    ConfigDict,
    Field,
    ValidationError,
)
from pydantic_core import PydanticCustomError

from postgres_platform.model.images import BUILDS, DEFAULT_BASE, is_pinned, pgbouncer_problem
from postgres_platform.model.names import (
    AUTH_ROLE,
    MAX_IDENTIFIER_BYTES,
    PGBOUNCER_ADMIN,
    POSTGRES_PORT,
    REPLICATION_ROLE,
    group_role,
    owner_role,
)
from postgres_platform.model.networks import is_private, too_wide
from postgres_platform.model.settings import setting_problem

IDENTIFIER = re.compile(r"^[a-z_][a-z0-9_]{0,62}$")
# Ours and Postgres' (postgres, public, none and the role keywords), and the keywords of pg_hba.conf and
# PgBouncer's HBA, where an app named `all` would be admitted to every pool.
RESERVED_NAMES = frozenset(
    {"postgres", "pgbouncer", "public", "none", "current_user", "current_role", "session_user", "user", "all",
     "sameuser", "samerole", "samegroup", "replication"}
)  # fmt: skip
# Schemas may be `public` (apps use it), but not Postgres' own or the one holding the auth function.
RESERVED_SCHEMAS = frozenset({"pgbouncer", "information_schema"})
# Postgres' own and TimescaleDB's schemas: the extension owns what is in them, no app is granted them.
EXTENSION_SCHEMA_PREFIXES = ("pg_", "_timescaledb", "timescaledb_")
DEFAULT_MIGRATION_TABLES = ("alembic_version", "schema_migrations")
HOSTS_NEED_ADDRESSES = 16  # the primary at .10, the replica at .11, and the broadcast address: a /28

# Settings that have their own typed key; a second way to set them would let the budget lie.
TYPED_SETTINGS = {
    "max_connections": "postgres.maxConnections",
    "superuser_reserved_connections": "postgres.superuserReservedConnections",
}


class ConfigError(Exception):
    """Bad stack config: one line per problem, each naming its key path and value."""

    def __init__(self, lines: list[str]):
        self.lines = lines
        super().__init__("\n".join(lines))


def _describe(value: Any) -> str:
    try:
        return json.dumps(value)
    except (TypeError, ValueError):
        return repr(value)


def _problem(path: str, message: str, value: Any) -> str:
    return f"{path}: {message}, got {_describe(value)}"


# --- field types -------------------------------------------------------------------------------


def _int_between(minimum: int, maximum: int) -> Any:
    def check(value: Any) -> int:
        # bool is an int in Python; `true` as a connection limit is a typo, not 1.
        if isinstance(value, bool) or not isinstance(value, int) or value < minimum:
            raise PydanticCustomError("int_at_least", f"must be an integer >= {minimum}")
        if value > maximum:
            raise PydanticCustomError("int_at_most", f"must be an integer <= {maximum}")
        return value

    return BeforeValidator(check)


MAX_BACKENDS = 262143  # Postgres' ceiling for max_connections and so for any connection count
INT4_MAX = 2147483647  # timeouts are int4 milliseconds in Postgres
Connections = Annotated[int, _int_between(1, MAX_BACKENDS)]
Slots = Annotated[int, _int_between(0, MAX_BACKENDS)]
PoolSize = Annotated[int, _int_between(1, 10_000)]
Milliseconds = Annotated[int, _int_between(0, INT4_MAX)]
Port = Annotated[int, _int_between(1, 65535)]
NonNegativeInt = Annotated[int, _int_between(0, 1_000_000)]


def _identifier(value: str) -> str:
    if not IDENTIFIER.fullmatch(value):  # not match: `$` would let a trailing newline through
        raise PydanticCustomError("identifier", "must match ^[a-z_][a-z0-9_]{0,62}$")
    return value


def _not_reserved(value: str) -> str:
    if value in RESERVED_NAMES or value.startswith("pg_"):
        raise PydanticCustomError("reserved", f"is a reserved name ({', '.join(sorted(RESERVED_NAMES))}, pg_*)")
    return value


def _not_template(value: str) -> str:
    if value in ("template0", "template1"):
        raise PydanticCustomError(
            "reserved", "is a template database: every new database is copied from template1 (an app's owner "
            "and lookup function would reach them all), template0 takes no connections"
        )  # fmt: skip
    return value


def _schema_name(value: str) -> str:
    if value in RESERVED_SCHEMAS or value.startswith(EXTENSION_SCHEMA_PREFIXES):
        raise PydanticCustomError(
            "reserved", "is a reserved schema (pgbouncer, information_schema, pg_*, an extension's: _timescaledb_*, "
            "timescaledb_*)"
        )  # fmt: skip
    return value


def _pinned_image(value: str) -> str:
    """`name:tag` (tag not latest) or `name@sha256:...`; a bare name floats (seed 001's outage)."""
    if not is_pinned(value):
        raise PydanticCustomError("pinned_image", "must pin a tag other than latest, or an @sha256 digest")
    return value


def _built_postgres(value: str) -> str:
    """The Postgres image is one this program builds (images/): its entrypoint, uid and pgBackRest are
    what the components rely on."""
    build = BUILDS.get(value)
    if build is None or build.context != "postgres":
        ours = ", ".join(b.reference for b in BUILDS.values() if b.context == "postgres")
        raise PydanticCustomError("postgres_image", f"must be an image this program builds from images/: {ours}")
    return value


def _patched_pgbouncer(value: str) -> str:
    problem = pgbouncer_problem(value)
    if problem is not None:
        raise PydanticCustomError("pgbouncer_version", problem)
    return value


def _not_blank(value: str) -> str:
    if not value.strip():
        raise PydanticCustomError("blank", "must not be empty")
    return value


def _cidr(value: str) -> str:
    try:
        ipaddress.ip_network(value, strict=True)
    except ValueError as exc:
        raise PydanticCustomError("cidr", "must be a CIDR such as 10.0.0.0/16") from exc
    return value


Identifier = Annotated[str, AfterValidator(_identifier)]
RoleName = Annotated[str, AfterValidator(_identifier), AfterValidator(_not_reserved)]
DatabaseName = Annotated[RoleName, AfterValidator(_not_template)]
SchemaName = Annotated[str, AfterValidator(_identifier), AfterValidator(_schema_name)]
Image = Annotated[str, AfterValidator(_pinned_image)]
Cidr = Annotated[str, AfterValidator(_cidr)]
Text = Annotated[str, AfterValidator(_not_blank)]
SettingValue = str | int | float | bool


class _Model(BaseModel):
    model_config = ConfigDict(frozen=True, extra="forbid", populate_by_name=True, strict=True)


# --- sections ----------------------------------------------------------------------------------


class PostgresConfig(_Model):
    # The server's image (built from images/); None only for target existing (not ours to run).
    image: Annotated[Image, AfterValidator(_built_postgres)] | None = None
    max_connections: Connections = Field(100, alias="maxConnections")
    superuser_reserved_connections: Slots = Field(3, alias="superuserReservedConnections")
    admin_headroom: Slots = Field(5, alias="adminHeadroom")
    settings: dict[Annotated[str, AfterValidator(_identifier)], SettingValue] = {}


class PgBouncerConfig(_Model):
    image: Annotated[Image, AfterValidator(_patched_pgbouncer)]
    pool_mode: Literal["transaction", "session"] = Field("transaction", alias="poolMode")
    max_client_conn: Annotated[int, _int_between(1, 1_000_000)] = Field(1000, alias="maxClientConn")
    default_pool_size: PoolSize = Field(15, alias="defaultPoolSize")
    reserve_pool_size: Annotated[int, _int_between(0, 10_000)] = Field(
        5, alias="reservePoolSize"
    )  # 0: PgBouncer's default
    # The auth role's slots. PgBouncer keeps one idle lookup connection per pool database (one pool
    # per app) and opens a new one while an old one is still closing; fewer locks apps out.
    auth_connection_limit: PoolSize | None = Field(None, alias="authConnectionLimit")
    # How long a pooled client waits for a server connection before PgBouncer fails it with its own
    # message (PgBouncer's default, 120 s, is a hang to an app and its user).
    query_wait_timeout: Annotated[int, _int_between(1, 3600)] = Field(15, alias="queryWaitTimeout")


class DatabaseConfig(_Model):
    schemas: Annotated[list[SchemaName], Field(min_length=1)]
    migration_tables: list[str] | None = Field(None, alias="migrationTables")

    def migration_table_names(self) -> tuple[str, ...]:
        """Qualified `schema.table` names whose writes belong to migrate roles only."""
        if self.migration_tables is not None:
            return tuple(self.migration_tables)
        return tuple(f"{s}.{t}" for s in self.schemas for t in DEFAULT_MIGRATION_TABLES)


AccessLevel = Literal["read", "write", "migrate"]


class AppConfig(_Model):
    database: str
    access: AccessLevel
    connection_limit: Connections = Field(alias="connectionLimit")
    schemas: Annotated[list[str], Field(min_length=1)] | None = None  # [] would read as "all of them"
    pooled: bool = True
    statement_timeout_ms: Milliseconds | None = Field(None, alias="statementTimeoutMs")
    idle_in_transaction_timeout_ms: Milliseconds | None = Field(None, alias="idleInTransactionTimeoutMs")
    # Alternating logins: set (from 0) to give the app two login roles, <app>_a and <app>_b; each +1
    # makes the other one active with a new password while the old one keeps working (README).
    rotation: NonNegativeInt | None = None
    # Slots of the limit the pool never takes: a migration's direct DSN gets in while pooled clients are
    # busy. None: one for a migrate app, none for the others (they connect through the pool).
    direct_connections: NonNegativeInt | None = Field(None, alias="directConnections")

    def direct_slots(self) -> int:
        if self.direct_connections is not None:
            return self.direct_connections
        return 1 if self.access == "migrate" else 0


@dataclass(frozen=True)
class Login:
    """A login role of an app and its password generation (a new generation is a new password)."""

    role: str
    app: str
    generation: int
    active: bool  # the one the app's DSN outputs name


class ExternalRoleConfig(_Model):
    connection_limit: Connections = Field(alias="connectionLimit")


class LocalConfig(_Model):
    postgres_port: Port = Field(5432, alias="postgresPort")
    pgbouncer_port: Port = Field(6432, alias="pgbouncerPort")


SslMode = Literal["disable", "allow", "prefer", "require", "verify-ca", "verify-full"]


class PgBouncerHostConfig(_Model):
    """Where PgBouncer runs next to a server the program did not build: a Docker engine you name."""

    docker_host: Text = Field(alias="dockerHost")  # `ssh://user@host` (the operator's ssh-agent) or `local`
    address: Text  # PgBouncer listens here; apps' pooled DSNs name it
    config_root: Text = Field("/etc/postgres-platform", alias="configRoot")  # its config directory's parent

    def ssh(self) -> tuple[str, str] | None:
        """(user, host) of an `ssh://user@host` Docker host; None for the local engine."""
        if self.docker_host == "local":
            return None
        user, _, host = self.docker_host.removeprefix("ssh://").partition("@")
        return (user, host) if host else ("root", user)


class ExistingConfig(_Model):
    """A running server the program adopts: it manages roles, grants and (optionally) a PgBouncer there,
    never the server, its settings, its databases' existence or their data."""

    host: Text  # where the provider, live_budget and the apps' DSNs reach it
    port: Port = POSTGRES_PORT
    sslmode: SslMode = "verify-full"
    ca_file: Text | None = Field(None, alias="caFile")  # the server's CA, a file on the machine running Pulumi
    admin_user: RoleName | Literal["postgres"] = Field("postgres", alias="adminUser")
    # False on a managed server (Heroku, RDS): CREATEROLE without superuser. README: what cannot be done there.
    admin_superuser: bool = Field(True, alias="adminSuperuser")
    # Roles that create tables in the app schemas today (a migration runner logged in as postgres):
    # the groups get default privileges FOR them too, so their new tables are granted. None: adminUser.
    object_creators: list[RoleName | Literal["postgres"]] | None = Field(None, alias="objectCreators")
    # `database.schema.object` kept with its current owner when the app schemas move to `<db>_owner`.
    keep_owners: list[str] = Field([], alias="keepOwners")
    pgbouncer_host: PgBouncerHostConfig | None = Field(None, alias="pgbouncerHost")

    def creators(self) -> tuple[str, ...]:
        return tuple(self.object_creators if self.object_creators is not None else [self.admin_user])


class HetznerConfig(_Model):
    location: Text
    server_type: Text = Field(alias="serverType")
    image: Text
    network_zone: Text = Field(alias="networkZone")
    ip_range: Cidr = Field(alias="ipRange")
    subnet: Cidr
    admin_cidrs: Annotated[list[Cidr], Field(min_length=1)] = Field(alias="adminCidrs")
    ssh_keys: Annotated[list[Text], Field(min_length=1)] = Field(alias="sshKeys")
    replicas: Literal[0, 1] = 0
    volume_size: Annotated[int, _int_between(10, 10240)] = Field(50, alias="volumeSize")  # GB: Hetzner's range
    # Hetzner delete and rebuild protection on the servers (data volumes are always protected).
    protect_servers: bool = Field(False, alias="protectServers")

    def primary_ip(self) -> str:
        """The primary's fixed private IP: host 10 of the subnet (Hetzner keeps .1 for its gateway)."""
        return str(ipaddress.ip_network(self.subnet)[10])

    def replica_ip(self) -> str:
        return str(ipaddress.ip_network(self.subnet)[11])


class S3RepoConfig(_Model):
    """An S3-compatible bucket (Hetzner Object Storage: `<location>.your-objectstorage.com`), path-style URIs."""

    endpoint: Text
    bucket: Text
    region: Text
    path: Text  # one per stack, e.g. /prod
    # A CA file on the hosts for the endpoint's certificate (tests: a self-signed one); None: the system's.
    ca_file: Text | None = Field(None, alias="caFile")


class BackupSchedule(_Model):
    """systemd OnCalendar expressions (the host runs a timer per backup type)."""

    full: Text = "Sun *-*-* 01:00:00"
    diff: Text = "Mon..Sat *-*-* 01:00:00"


class BackupConfig(_Model):
    repo: Literal["s3", "posix"]
    s3: S3RepoConfig | None = None
    retention_full: Annotated[int, _int_between(1, 100)] = Field(2, alias="retentionFull")
    retention_diff: Annotated[int, _int_between(1, 1000)] = Field(7, alias="retentionDiff")
    schedule: BackupSchedule = BackupSchedule()
    archive_timeout: Annotated[int, _int_between(1, 3600)] = Field(60, alias="archiveTimeout")  # seconds


class PlatformConfig(_Model):
    target: Literal["local", "hetzner", "existing"]
    postgres: PostgresConfig
    pgbouncer: PgBouncerConfig | None = None  # required but for target existing, where it is optional
    databases: Annotated[dict[DatabaseName, DatabaseConfig], Field(min_length=1)]
    apps: Annotated[dict[RoleName, AppConfig], Field(min_length=1)]
    external_roles: dict[RoleName, ExternalRoleConfig] = Field({}, alias="externalRoles")
    local: LocalConfig | None = None  # only for target local (ports on this machine)
    hetzner: HetznerConfig | None = None  # only for target hetzner
    existing: ExistingConfig | None = None  # only for target existing
    backup: BackupConfig | None = None  # required for every Hetzner stack
    # FROM what the images in images/ are built: Debian's official image, or scripts/base_image.sh's.
    image_base: Image = Field(DEFAULT_BASE, alias="imageBase")

    def local_ports(self) -> LocalConfig:
        return self.local or LocalConfig()

    def pooled_apps(self) -> list[str]:
        """Apps with a PgBouncer pool (none where there is no PgBouncer: an adopted server without one)."""
        return [app for app, spec in self.apps.items() if spec.pooled and self.pgbouncer is not None]

    def server_image(self) -> str:
        """The image of a server the program runs (config checks require postgres.image for those)."""
        assert self.postgres.image is not None, "target existing runs no Postgres"
        return self.postgres.image

    def bouncer(self) -> PgBouncerConfig:
        """The PgBouncer section, where there is a PgBouncer (always but on an adopted server)."""
        assert self.pgbouncer is not None, "no pgbouncer section"
        return self.pgbouncer

    @property
    def adopted(self) -> bool:
        """The server exists and is not ours: its databases are adopted, its settings only checked."""
        return self.target == "existing"

    def logins(self, app: str) -> tuple[Login, ...]:
        """The app's login roles: itself, or with `rotation` N: <app>_a (active when N is even) and <app>_b.

        Each becomes active with a new password (generation) and stays valid until it is next made
        active, so clients still on the other one never fail: password rotation without an outage.
        """
        rotation = self.apps[app].rotation
        if rotation is None:
            return (Login(app, app, 0, True),)
        return (
            Login(f"{app}_a", app, rotation // 2, rotation % 2 == 0),
            Login(f"{app}_b", app, (rotation + 1) // 2, rotation % 2 == 1),
        )

    def active_login(self, app: str) -> Login:
        return next(login for login in self.logins(app) if login.active)

    def auth_role_limit(self) -> int:
        """CONNECTION LIMIT of PgBouncer's auth role: one lookup connection per app pool, plus one."""
        explicit = self.pgbouncer.auth_connection_limit if self.pgbouncer is not None else None
        return explicit or self.minimum_auth_role_limit()

    def minimum_auth_role_limit(self) -> int:
        return len(self.pooled_apps()) + 1

    def app_schemas(self, app: str) -> tuple[str, ...]:
        """The schemas an app is granted: its own list, or all of its database's."""
        spec = self.apps[app]
        return tuple(spec.schemas or self.databases[spec.database].schemas)

    def app_group(self, app: str) -> str:
        """The group role whose grants an app gets: its database's for its level and schema set.

        A migrate app writes through the write group; its DDL comes from membership in the owner role.
        """
        spec = self.apps[app]
        level = "read" if spec.access == "read" else "write"
        schemas = self.app_schemas(app)
        full = set(schemas) == set(self.databases[spec.database].schemas)
        return group_role(spec.database, level, None if full else self.ordered_schemas(spec.database, schemas))

    def ordered_schemas(self, database: str, schemas: tuple[str, ...]) -> tuple[str, ...]:
        return tuple(s for s in self.databases[database].schemas if s in schemas)


# --- loading -----------------------------------------------------------------------------------


def _message(error: Mapping[str, Any]) -> str:
    kind = error["type"]
    if kind == "missing":
        return "is required"
    if kind == "extra_forbidden":
        return "is not a known setting"
    message = str(error["msg"]).removeprefix("Value error, ")
    for pydantic_words, ours in (
        ("Input should be", "must be"),
        ("Dictionary should", "must"),
        ("List should", "must"),
    ):
        message = message.replace(pydantic_words, ours)
    return message


def _path(loc: tuple[int | str, ...]) -> str:
    parts: list[str] = []
    for part in loc:
        if part == "[key]":  # the problem is the mapping key itself, already the last part
            continue
        if isinstance(part, int):
            parts[-1] = f"{parts[-1]}[{part}]"
        elif part in ("str", "int", "float", "bool", "literal[0,1]"):
            continue  # union branch names pydantic adds for SettingValue etc.
        else:
            parts.append(str(part))
    return ".".join(parts)


def validate(raw: Mapping[str, Any]) -> PlatformConfig:
    """Validate the namespace's values (keys without the `postgres-platform:` prefix); no budget yet."""
    try:
        config = PlatformConfig.model_validate(dict(raw))
    except ValidationError as exc:
        lines: dict[str, None] = {}  # in order, without repeats (a dict: linear in the number of errors)
        for error in exc.errors():
            if error["type"] == "missing":
                got = "nothing"
            elif error["loc"] and error["loc"][-1] == "[key]":
                got = _describe(error["loc"][-2])  # a bad mapping key: the key is the value
            else:
                got = _describe(error["input"])
            lines[f"{_path(error['loc'])}: {_message(error)}, got {got}"] = None
        raise ConfigError(list(lines)) from None
    problems = _cross_checks(config)
    if problems:
        raise ConfigError(problems)
    return config


def _cross_checks(config: PlatformConfig) -> list[str]:
    """What one field cannot know alone: references between sections and name clashes."""
    problems: list[str] = []
    pg = config.postgres
    if pg.superuser_reserved_connections >= pg.max_connections:
        problems.append(
            _problem(
                "postgres.superuserReservedConnections",
                f"must be less than postgres.maxConnections ({pg.max_connections})",
                pg.superuser_reserved_connections,
            )
        )
    for setting, key in TYPED_SETTINGS.items():
        if setting in pg.settings:
            problems.append(_problem(f"postgres.settings.{setting}", f"set {key} instead", pg.settings[setting]))
    reserved = pg.settings.get("reserved_connections", 0)
    if isinstance(reserved, bool) or not isinstance(reserved, int) or not 0 <= reserved < pg.max_connections:
        # Counted in the budget (it takes slots from every role but pg_use_reserved_connections'): so it
        # must be a number the budget can count.
        message = "must be an integer >= 0 and below maxConnections (the budget counts it)"
        problems.append(_problem("postgres.settings.reserved_connections", message, reserved))
    for name, db in config.databases.items():
        if len(set(db.schemas)) != len(db.schemas):
            problems.append(_problem(f"databases.{name}.schemas", "lists a schema twice", db.schemas))
        for i, table in enumerate(db.migration_tables or ()):
            schema, _, rest = table.partition(".")
            if not rest or not IDENTIFIER.match(rest):
                problems.append(_problem(f"databases.{name}.migrationTables[{i}]", "must be schema.table", table))
            elif schema not in db.schemas:
                problems.append(
                    _problem(
                        f"databases.{name}.migrationTables[{i}]",
                        f"schema {schema} is not one of {name}'s schemas ({', '.join(db.schemas)})",
                        table,
                    )
                )
    for app, spec in config.apps.items():
        if spec.database not in config.databases:
            known = ", ".join(config.databases)
            problems.append(_problem(f"apps.{app}.database", f"unknown database (known: {known})", spec.database))
            continue
        db_schemas = config.databases[spec.database].schemas
        for i, schema in enumerate(spec.schemas or ()):
            if schema not in db_schemas:
                problems.append(
                    _problem(
                        f"apps.{app}.schemas[{i}]",
                        f"not a schema of {spec.database} ({', '.join(db_schemas)})",
                        schema,
                    )
                )
    explicit_auth_limit = config.pgbouncer.auth_connection_limit if config.pgbouncer is not None else None
    for app, spec in config.apps.items():
        if spec.pooled and config.pgbouncer is not None and spec.direct_slots() >= spec.connection_limit:
            problems.append(_problem(f"apps.{app}.directConnections", f"must leave the pool at least one of its "
                                     f"connectionLimit {spec.connection_limit}", spec.direct_slots()))  # fmt: skip
    if explicit_auth_limit is not None and explicit_auth_limit < config.minimum_auth_role_limit():
        problems.append(
            _problem(
                "pgbouncer.authConnectionLimit",
                f"must be at least {config.minimum_auth_role_limit()}: PgBouncer keeps one lookup connection "
                "per app pool and opens a new one while an old one closes",
                explicit_auth_limit,
            )
        )
    ports = config.local_ports()
    if ports.postgres_port == ports.pgbouncer_port:
        problems.append(_problem("local.pgbouncerPort", "must differ from local.postgresPort", ports.pgbouncer_port))
    sections = {"local": config.local, "hetzner": config.hetzner, "existing": config.existing}
    for section, value in sections.items():
        if value is not None and section != config.target:
            problems.append(
                _problem(
                    section, f"does not belong to target {config.target}: remove it", value.model_dump(by_alias=True)
                )
            )
    if config.target == "existing":
        problems += _existing_checks(config)
    else:
        problems += _built_server_checks(config) + _backup_checks(config) + _settings_checks(config)
    if config.target == "hetzner":
        if config.hetzner is None:
            problems.append(_problem("hetzner", "is required when target is hetzner", None))
        else:
            problems.extend(_network_checks(config.hetzner))
    if problems:
        return problems  # the derived names below need known databases and schemas
    own = {
        AUTH_ROLE: "the PgBouncer auth role",
        PGBOUNCER_ADMIN: "the PgBouncer admin user",
        REPLICATION_ROLE: "the replication role",
    }
    # Every role the program derives, by what defines it: one name must never stand for two things.
    derived: dict[str, tuple[str, tuple[str, ...]]] = {}  # role -> (the key it comes from, its definition)
    for database, database_config in config.databases.items():
        derived[owner_role(database)] = (f"databases.{database}", (database, "owner"))
        for level in ("read", "write"):
            definition = (database, level, *database_config.schemas)
            derived[group_role(database, level)] = (f"databases.{database}", definition)
    for app, spec in config.apps.items():
        level = "read" if spec.access == "read" else "write"
        definition = (spec.database, level, *config.ordered_schemas(spec.database, config.app_schemas(app)))
        group = config.app_group(app)
        _, existing = derived.setdefault(group, (f"apps.{app}.schemas", definition))
        if existing != definition:
            problems.append(
                _problem(f"apps.{app}.schemas", f"its group role {group} names another group too", spec.schemas)
            )
    for role, (key, definition) in derived.items():
        if len(role.encode()) > MAX_IDENTIFIER_BYTES:
            problems.append(
                _problem(key, f"derived role name {role} is longer than {MAX_IDENTIFIER_BYTES} bytes", role)
            )
        own.setdefault(role, f"the {definition[1]} role of database {definition[0]}")
    for app in config.apps:
        for login in config.logins(app) if config.apps[app].rotation is not None else ():
            if len(login.role.encode()) > MAX_IDENTIFIER_BYTES:
                problems.append(
                    _problem(f"apps.{app}.rotation", f"login role {login.role} is longer than 63 bytes", app)
                )
            if login.role in own or login.role in config.apps or login.role in config.external_roles:
                problems.append(
                    _problem(f"apps.{app}.rotation", f"login role {login.role} is another role's name", app)
                )
        if app in config.databases:
            # PgBouncer names each app's pool database after the app (render.pgbouncer.pools).
            problems.append(_problem(f"apps.{app}", "an app may not be named like a database", app))
        if app in own:
            problems.append(_problem(f"apps.{app}", f"role name is taken by {own[app]}", app))
    for role in config.external_roles:
        if role in config.apps:
            problems.append(_problem(f"externalRoles.{role}", f"role name is also an app (apps.{role})", role))
        elif role in own:
            problems.append(_problem(f"externalRoles.{role}", f"role name is taken by {own[role]}", role))
    return problems


def _built_server_checks(config: PlatformConfig) -> list[str]:
    """A server the program runs needs its image and a PgBouncer."""
    problems = []
    if config.postgres.image is None:
        problems.append(_problem("postgres.image", f"is required when target is {config.target}", None))
    if config.pgbouncer is None:
        problems.append(_problem("pgbouncer", f"is required when target is {config.target}", None))
    return problems


def _existing_checks(config: PlatformConfig) -> list[str]:
    existing = config.existing
    if existing is None:
        return [_problem("existing", "is required when target is existing", None)]
    not_ours = "must be absent for target existing: the program does not run that server"
    problems = []
    if config.postgres.image is not None:
        problems.append(_problem("postgres.image", f"{not_ours} (live_budget.py checks it)", config.postgres.image))
    if config.postgres.settings:
        problems.append(_problem("postgres.settings", f"{not_ours} or set its settings", config.postgres.settings))
    if config.backup is not None:
        problems.append(_problem("backup", f"{not_ours}: keep its own backups", config.backup.repo))
    if config.pgbouncer is not None and existing.pgbouncer_host is None:
        problems.append(_problem("existing.pgbouncerHost", "is required with a pgbouncer section", None))
    if config.pgbouncer is None and existing.pgbouncer_host is not None:
        problems.append(_problem("pgbouncer", "is required with existing.pgbouncerHost (its pools)", None))
    if config.pgbouncer is not None and not existing.admin_superuser:
        # PgBouncer's lookup function reads pg_authid: only a superuser may create it.
        message = "needs existing.adminSuperuser: its auth_query function reads pg_authid (superuser only)"
        problems.append(_problem("pgbouncer", message, config.pgbouncer.model_dump(by_alias=True)))
    if config.pgbouncer is None:
        for app, spec in config.apps.items():
            if "pooled" in spec.model_fields_set and spec.pooled:
                problems.append(_problem(f"apps.{app}.pooled", "must be false without a pgbouncer section", True))
    for i, kept in enumerate(existing.keep_owners):
        parts = kept.split(".")
        if len(parts) != 3 or not all(IDENTIFIER.fullmatch(p) for p in parts):
            problems.append(_problem(f"existing.keepOwners[{i}]", "must be database.schema.object", kept))
        elif parts[0] not in config.databases or parts[1] not in config.databases[parts[0]].schemas:
            problems.append(_problem(f"existing.keepOwners[{i}]", "names no declared database and schema", kept))
    return problems


# On a host that holds real data (every Hetzner stack), what may lose it or weaken logins: value -> why.
UNSAFE_ON_HOSTS = {
    "fsync": ("off", "a crash can corrupt the database"),
    "full_page_writes": ("off", "a crash can leave torn pages"),
}


def _settings_checks(config: PlatformConfig) -> list[str]:
    """Each extra setting as the shipped server would read it (model/settings.py, its pg_settings);
    on Hetzner, none that trades durability or login security away."""
    settings = config.postgres.settings
    problems = [
        _problem(f"postgres.settings.{name}", problem, value)
        for name, value in settings.items()
        if (problem := setting_problem(name, value)) is not None
    ]
    if config.target != "hetzner":
        return problems
    for name, (unsafe, why) in UNSAFE_ON_HOSTS.items():
        if name in settings and str(settings[name]).lower() in (unsafe, "false", "no", "0"):
            problems.append(
                _problem(f"postgres.settings.{name}", f"must stay on on a Hetzner stack: {why}", settings[name])
            )
    encryption = settings.get("password_encryption", "scram-sha-256")
    if str(encryption).lower() != "scram-sha-256":
        problems.append(_problem("postgres.settings.password_encryption", "must be scram-sha-256 (PgBouncer's "
                                 "auth_query and the stable verifiers rely on it)", encryption))  # fmt: skip
    return problems


def _backup_checks(config: PlatformConfig) -> list[str]:
    backup = config.backup
    if backup is None:
        if config.target == "hetzner":
            return [_problem("backup", "is required for every Hetzner stack (pgBackRest to S3: README, Backups)", None)]
        return []
    problems = []
    if backup.repo == "s3" and backup.s3 is None:
        problems.append(_problem("backup.s3", "is required when backup.repo is s3", None))
    if backup.repo == "posix" and config.target == "hetzner":
        # A repository on the database host is lost with it: off-host object storage only.
        problems.append(_problem("backup.repo", "must be s3 on Hetzner (a posix repo dies with its host)", "posix"))
    return problems


def _network_checks(hetzner: HetznerConfig) -> list[str]:
    problems: list[str] = []
    ip_range = ipaddress.ip_network(hetzner.ip_range)
    subnet = ipaddress.ip_network(hetzner.subnet)
    for key, network in (("hetzner.ipRange", ip_range), ("hetzner.subnet", subnet)):
        if network.version != 4 or not is_private(network):
            problems.append(_problem(key, "must be a private IPv4 range (10/8, 172.16/12, 192.168/16)", str(network)))
    if subnet.version != ip_range.version or not subnet.subnet_of(ip_range):  # type: ignore[arg-type]
        problems.append(
            _problem("hetzner.subnet", f"must lie inside hetzner.ipRange ({hetzner.ip_range})", hetzner.subnet)
        )
    if subnet.num_addresses < HOSTS_NEED_ADDRESSES:
        problems.append(
            _problem("hetzner.subnet", "must hold the hosts at .10 and .11: a /28 or larger", hetzner.subnet)
        )
    problems += admin_cidr_problems(hetzner.admin_cidrs)
    return problems


def admin_cidr_problems(cidrs: list[str]) -> list[str]:
    """SSH and 5432 are open to the union of these: it must stay a small, known range."""
    return [_problem("hetzner.adminCidrs", f"together open {wide} to SSH and 5432", cidrs) for wide in too_wide(cidrs)]
