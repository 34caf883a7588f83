"""The stack config: parsed and validated once, before any resource is declared.

Every problem becomes one line `key.path: what is wrong, got <value>`; all lines are reported together
so an operator fixes a stack file in one round. Nothing here imports pulumi: `load_pulumi_config`
takes the raw namespace values, so tests and preflight feed YAML straight in.
"""

from __future__ import annotations

import contextlib
import ipaddress
import json
import re
from collections.abc import Mapping
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

from components import budget
from components.names import AUTH_ROLE, NAMESPACE, PGBOUNCER_ADMIN, REPLICATION_ROLE, owner_role

IDENTIFIER = re.compile(r"^[a-z_][a-z0-9_]{0,62}$")
RESERVED_NAMES = frozenset({"postgres", "pgbouncer", "public"})
# Schemas may be `public` (apps use it), but not Postgres' own or the one holding the auth function.
RESERVED_SCHEMAS = frozenset({"pgbouncer", "information_schema"})
DEFAULT_MIGRATION_TABLES = ("alembic_version", "schema_migrations")
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


def _int_at_least(minimum: int) -> Any:
    def check(value: Any) -> int:
        # bool is an int in Python; `true` as a connection limit is a typo, not 1.
        if isinstance(value, bool) or not isinstance(value, int) or value < minimum:
            raise PydanticCustomError("int_at_least", f"must be an integer >= {minimum}")
        return value

    return BeforeValidator(check)


PositiveInt = Annotated[int, _int_at_least(1)]
NonNegativeInt = Annotated[int, _int_at_least(0)]


def _identifier(value: str) -> str:
    if not IDENTIFIER.match(value):
        raise PydanticCustomError("identifier", "must match ^[a-z_][a-z0-9_]{0,62}$")
    return value


def _not_reserved(value: str) -> str:
    if value in RESERVED_NAMES or value.startswith("pg_"):
        raise PydanticCustomError("reserved", "is a reserved name (postgres, pgbouncer, public, pg_*)")
    return value


def _schema_name(value: str) -> str:
    if value in RESERVED_SCHEMAS or value.startswith("pg_"):
        raise PydanticCustomError("reserved", "is a reserved schema (pgbouncer, information_schema, pg_*)")
    return value


def _pinned_image(value: str) -> str:
    """`name:tag` (tag not latest) or `name@sha256:...`; a bare name floats (seed 001's outage)."""
    if "@sha256:" in value:
        return value
    last = value.rsplit("/", 1)[-1]
    tag = last.split(":", 1)[1] if ":" in last else ""
    if not tag or tag == "latest":
        raise PydanticCustomError("pinned_image", "must pin a tag other than latest, or an @sha256 digest")
    return value


def _cidr(value: str) -> str:
    try:
        ipaddress.ip_network(value, strict=True)
    except ValueError as exc:
        raise PydanticCustomError("cidr", "must be a CIDR such as 10.0.0.0/16") from exc
    return value


Identifier = Annotated[str, AfterValidator(_identifier)]
RoleName = Annotated[str, AfterValidator(_identifier), AfterValidator(_not_reserved)]
DatabaseName = RoleName
SchemaName = Annotated[str, AfterValidator(_identifier), AfterValidator(_schema_name)]
Image = Annotated[str, AfterValidator(_pinned_image)]
Cidr = Annotated[str, AfterValidator(_cidr)]
SettingValue = str | int | float | bool


class _Model(BaseModel):
    model_config = ConfigDict(frozen=True, extra="forbid", populate_by_name=True, strict=True)


# --- sections ----------------------------------------------------------------------------------


class PostgresConfig(_Model):
    image: Image
    max_connections: PositiveInt = Field(100, alias="maxConnections")
    superuser_reserved_connections: NonNegativeInt = Field(3, alias="superuserReservedConnections")
    admin_headroom: NonNegativeInt = Field(5, alias="adminHeadroom")
    settings: dict[Annotated[str, AfterValidator(_identifier)], SettingValue] = {}


class PgBouncerConfig(_Model):
    image: Image
    pool_mode: Literal["transaction", "session"] = Field("transaction", alias="poolMode")
    max_client_conn: PositiveInt = Field(1000, alias="maxClientConn")
    default_pool_size: PositiveInt = Field(15, alias="defaultPoolSize")
    reserve_pool_size: PositiveInt = Field(5, alias="reservePoolSize")
    # The auth role's slots. PgBouncer keeps one idle lookup connection per pool database (one pool
    # per app) and opens a new one while an old one is still closing; fewer locks apps out.
    auth_connection_limit: PositiveInt | None = Field(None, alias="authConnectionLimit")


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
    connection_limit: PositiveInt = Field(alias="connectionLimit")
    schemas: list[str] | None = None
    pooled: bool = True
    statement_timeout_ms: NonNegativeInt | None = Field(None, alias="statementTimeoutMs")
    idle_in_transaction_timeout_ms: NonNegativeInt | None = Field(None, alias="idleInTransactionTimeoutMs")


class ExternalRoleConfig(_Model):
    connection_limit: PositiveInt = Field(alias="connectionLimit")


class LocalConfig(_Model):
    postgres_port: Annotated[int, _int_at_least(1)] = Field(5432, alias="postgresPort")
    pgbouncer_port: Annotated[int, _int_at_least(1)] = Field(6432, alias="pgbouncerPort")


class HetznerConfig(_Model):
    location: str
    server_type: str = Field(alias="serverType")
    image: str
    network_zone: str = Field(alias="networkZone")
    ip_range: Cidr = Field(alias="ipRange")
    subnet: Cidr
    admin_cidrs: Annotated[list[Cidr], Field(min_length=1)] = Field(alias="adminCidrs")
    ssh_keys: Annotated[list[str], Field(min_length=1)] = Field(alias="sshKeys")
    replicas: Literal[0, 1] = 0
    volume_size: Annotated[int, _int_at_least(10)] = Field(50, alias="volumeSize")  # GB, Hetzner's minimum is 10
    # Hetzner delete and rebuild protection on the servers (data volumes are always protected).
    protect_servers: bool = Field(False, alias="protectServers")

    def primary_ip(self) -> str:
        """The primary's fixed private IP: host 10 of the subnet (Hetzner keeps .1 for its gateway)."""
        return str(ipaddress.ip_network(self.subnet)[10])

    def replica_ip(self) -> str:
        return str(ipaddress.ip_network(self.subnet)[11])


class PlatformConfig(_Model):
    target: Literal["local", "hetzner"]
    postgres: PostgresConfig
    pgbouncer: PgBouncerConfig
    databases: Annotated[dict[DatabaseName, DatabaseConfig], Field(min_length=1)]
    apps: Annotated[dict[RoleName, AppConfig], Field(min_length=1)]
    external_roles: dict[RoleName, ExternalRoleConfig] = Field({}, alias="externalRoles")
    local: LocalConfig = LocalConfig()
    hetzner: HetznerConfig | None = None

    def pooled_apps(self) -> list[str]:
        return [app for app, spec in self.apps.items() if spec.pooled]

    def auth_role_limit(self) -> int:
        """CONNECTION LIMIT of PgBouncer's auth role: one lookup connection per app pool, plus one."""
        return self.pgbouncer.auth_connection_limit or self.minimum_auth_role_limit()

    def minimum_auth_role_limit(self) -> int:
        return len(self.pooled_apps()) + 1

    def app_schemas(self, app: str) -> tuple[str, ...]:
        """The schemas an app is granted: its own list, or all of its database's."""
        spec = self.apps[app]
        return tuple(spec.schemas or self.databases[spec.database].schemas)


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


def parse(raw: Mapping[str, Any]) -> PlatformConfig:
    """Validate the namespace's values (keys without the `postgres-platform:` prefix)."""
    try:
        config = PlatformConfig.model_validate(dict(raw))
    except ValidationError as exc:
        lines: list[str] = []
        for error in exc.errors():
            if error["type"] == "missing":
                got = "nothing"
            elif error["loc"] and error["loc"][-1] == "[key]":
                got = _describe(error["loc"][-2])  # a bad mapping key: the key is the value
            else:
                got = _describe(error["input"])
            line = f"{_path(error['loc'])}: {_message(error)}, got {got}"
            if line not in lines:
                lines.append(line)
        raise ConfigError(lines) from None
    problems = _cross_checks(config)
    if not problems:
        problems = _budget_check(config)
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
    explicit_auth_limit = config.pgbouncer.auth_connection_limit
    if explicit_auth_limit is not None and explicit_auth_limit < config.minimum_auth_role_limit():
        problems.append(
            _problem(
                "pgbouncer.authConnectionLimit",
                f"must be at least {config.minimum_auth_role_limit()}: PgBouncer keeps one lookup connection "
                "per app pool and opens a new one while an old one closes",
                explicit_auth_limit,
            )
        )
    own = {
        AUTH_ROLE: "the PgBouncer auth role",
        PGBOUNCER_ADMIN: "the PgBouncer admin user",
        REPLICATION_ROLE: "the replication role",
    }
    own.update({owner_role(db): f"the owner role of database {db}" for db in config.databases})
    for app in config.apps:
        if app in config.databases:
            # PgBouncer names each app's pool database after the app (pgbouncer_config.pools).
            problems.append(_problem(f"apps.{app}", "an app may not be named like a database", app))
        if app in own:
            problems.append(_problem(f"apps.{app}", f"role name is taken by {own[app]}", app))
    for role in config.external_roles:
        if role in config.apps:
            problems.append(_problem(f"externalRoles.{role}", f"role name is also an app (apps.{role})", role))
        elif role in own:
            problems.append(_problem(f"externalRoles.{role}", f"role name is taken by {own[role]}", role))
    if config.target == "hetzner":
        if config.hetzner is None:
            problems.append(_problem("hetzner", "is required when target is hetzner", None))
        else:
            problems.extend(_network_checks(config.hetzner))
    return problems


def _network_checks(hetzner: HetznerConfig) -> list[str]:
    problems: list[str] = []
    ip_range = ipaddress.ip_network(hetzner.ip_range)
    subnet = ipaddress.ip_network(hetzner.subnet)
    if subnet.version != ip_range.version or not subnet.subnet_of(ip_range):  # type: ignore[arg-type]
        problems.append(
            _problem("hetzner.subnet", f"must lie inside hetzner.ipRange ({hetzner.ip_range})", hetzner.subnet)
        )
    for i, cidr in enumerate(hetzner.admin_cidrs):
        if ipaddress.ip_network(cidr).prefixlen == 0:
            problems.append(
                _problem(f"hetzner.adminCidrs[{i}]", "must not open the database to the whole internet", cidr)
            )
    return problems


def _budget_check(config: PlatformConfig) -> list[str]:
    problems = []
    for server in budget.compute(config):
        if server.free < 0:
            pg = config.postgres
            problems.append(
                _problem(
                    "postgres.maxConnections",
                    f"connection budget of server {server.name} does not fit: roles hold {server.total} "
                    f"+ adminHeadroom {server.headroom} = {server.total + server.headroom} > {server.usable} usable "
                    f"(maxConnections {pg.max_connections} - "
                    f"superuserReservedConnections {pg.superuser_reserved_connections})",
                    pg.max_connections,
                )
            )
    return problems


def load_stack_values(values: Mapping[str, Any]) -> PlatformConfig:
    """Parse `postgres-platform:*` values as Pulumi hands them over (objects JSON-encoded strings)."""
    prefix = f"{NAMESPACE}:"
    raw: dict[str, Any] = {}
    for key, value in values.items():
        if not key.startswith(prefix):
            continue
        name = key[len(prefix) :]
        if isinstance(value, str) and name != "target":
            with contextlib.suppress(json.JSONDecodeError):  # a plain string stays as it is
                value = json.loads(value)
        raw[name] = value
    return parse(raw)
