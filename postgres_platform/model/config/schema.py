"""The stack config's model: the sections every target has, and the values derived from them."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Annotated, Literal

from pydantic import Field

from postgres_platform.model.config.monitoring import MonitoringConfig
from postgres_platform.model.config.targets import BackupConfig, ExistingConfig, HetznerConfig, LocalConfig
from postgres_platform.model.config.types import (
    AccessLevel,
    ConfigModel,
    Connections,
    DatabaseName,
    Identifier,
    Image,
    Milliseconds,
    NonNegativeInt,
    PgBouncerImage,
    PoolSize,
    PostgresImage,
    RoleName,
    SchemaName,
    SettingValue,
    Slots,
    int_between,
    level_of,
)
from postgres_platform.model.images import DEFAULT_BASE
from postgres_platform.model.names import group_role

DEFAULT_MIGRATION_TABLES = ("alembic_version", "schema_migrations")


class PostgresConfig(ConfigModel):
    """`postgres`: the server, its connection slots and extra settings. For target existing it describes
    the server as it is: the budget is computed from it and live_budget.py checks it."""

    image: PostgresImage | None = None
    """The server's image, a build of images/ (its entrypoint, uid 999 and pgBackRest are what the
    program relies on), e.g. postgres-platform/postgres:17.12-deb13u1-patroni4.0.7; required but for target existing
    (not ours to run), where it must be absent."""
    max_connections: Connections = Field(100, alias="maxConnections")
    """The server's max_connections, every slot the connection budget shares out (default 100, Postgres'
    own)."""
    superuser_reserved_connections: Slots = Field(3, alias="superuserReservedConnections")
    """Slots only superusers may take, subtracted from what the budget shares out; less than
    maxConnections (default 3, Postgres' own)."""
    admin_headroom: Slots = Field(5, alias="adminHeadroom")
    """Slots of the budget promised to no role: for people and maintenance (default 5; the Pulumi
    provider's own pool stays within 4)."""
    settings: dict[Identifier, SettingValue] = Field({})
    """Further server settings by their postgresql.conf names, checked against the shipped server's
    parameters (those read at start go on its command line, the others into a reloadable file); not
    max_connections or superuser_reserved_connections (their keys above), none for target existing."""


class PgBouncerConfig(ConfigModel):
    """`pgbouncer`: PgBouncer in front of the server, a pool per app capped below the app's connection
    limit (required but for target existing, where it is optional and needs existing.pgbouncerHost)."""

    image: PgBouncerImage
    """PgBouncer's image, pinned by tag or digest: a build of images/ with every CVE fix (e.g.
    postgres-platform/pgbouncer:1.24.1-deb13u2) or an upstream release from 1.25.2 on."""
    pool_mode: Literal["transaction", "session"] = Field("transaction", alias="poolMode")
    """When a client gives its server connection back: after each transaction (default transaction: few
    connections serve many clients; session-level features need the direct DSN) or at its end
    (session)."""
    max_client_conn: Annotated[int, int_between(1, 1_000_000)] = Field(1000, alias="maxClientConn")
    """Client connections PgBouncer accepts in all, beyond which it refuses them (default 1000); the
    container's open-file limit is sized from it."""
    default_pool_size: PoolSize = Field(15, alias="defaultPoolSize")
    """Server connections of each app's pool (default 15), at most the app's connectionLimit less its
    direct connections."""
    reserve_pool_size: Annotated[int, int_between(0, 10_000)] = Field(5, alias="reservePoolSize")
    """Extra server connections a pool opens once a client has waited 3 s (default 5; 0, PgBouncer's own
    default, opens none), within what the app's connectionLimit leaves."""
    auth_connection_limit: PoolSize | None = Field(None, alias="authConnectionLimit")
    """CONNECTION LIMIT of the auth role, pgbouncer_auth. PgBouncer keeps an idle lookup connection per
    pool (one per pooled app) and opens a new one while an old one still closes, so the default and least
    is one per pooled app plus one."""
    query_wait_timeout: Annotated[int, int_between(1, 3600)] = Field(15, alias="queryWaitTimeout")
    """Seconds a pooled client waits for a server connection before PgBouncer fails it with its own
    message (default 15; PgBouncer's own 120 is a hang to an app and its user)."""


class DatabaseConfig(ConfigModel):
    """`databases.<name>`: a database the apps use, with the owner role `<name>_owner` and the groups
    `<name>_read` and `<name>_write` (for target existing: a database already there, adopted)."""

    schemas: Annotated[list[SchemaName], Field(min_length=1)]
    """Its schemas, at least one (public may be one); apps are granted them through the database's
    groups."""
    migration_tables: list[str] | None = Field(None, alias="migrationTables")
    """`schema.table` names of its migration tables, which only migrate apps may write. Absent:
    alembic_version and schema_migrations in each of its schemas."""

    def migration_table_names(self) -> tuple[str, ...]:
        """Qualified `schema.table` names whose writes belong to migrate roles only."""
        if self.migration_tables is not None:
            return tuple(self.migration_tables)
        return tuple(f"{s}.{t}" for s in self.schemas for t in DEFAULT_MIGRATION_TABLES)


class AppConfig(ConfigModel):
    """`apps.<name>`: an app and its login role (named after it), with a hard connection limit, a
    generated password and DSNs exported as secrets; its pool database in PgBouncer has its name too."""

    database: str
    """The database it uses, one of `databases`; it is granted no other."""
    access: AccessLevel
    """What it may do there: read, write (read and write data, sequences, TEMPORARY tables) or migrate
    (write and DDL in every schema of its database, as `<db>_owner`)."""
    connection_limit: Connections = Field(alias="connectionLimit")
    """Its login role's CONNECTION LIMIT, pooled and direct connections together; counted in the
    budget."""
    schemas: Annotated[list[str], Field(min_length=1)] | None = None  # [] would read as "all of them"
    """The schemas of its database it is granted, a subset with a group role of its own; absent: all of
    them."""
    pooled: bool = True
    """Whether it has a PgBouncer pool and a pooled DSN (default true). Without a PgBouncer (target
    existing without a pgbouncer section) no app is pooled, and `true` is an error."""
    statement_timeout_ms: Milliseconds | None = Field(None, alias="statementTimeoutMs")
    """statement_timeout of its role in milliseconds (0: none); absent: the server's."""
    idle_in_transaction_timeout_ms: Milliseconds | None = Field(None, alias="idleInTransactionTimeoutMs")
    """idle_in_transaction_session_timeout of its role in milliseconds (0: none); absent: the server's."""
    rotation: NonNegativeInt | None = None
    """Alternating logins, for password rotation without an outage: set (from 0), the app has two login
    roles, `<app>_a` and `<app>_b`, both in the budget; each +1 makes the other one active with a new
    password while the old one keeps working. Absent: one login (docs/operations/changing-a-live-stack.md)."""
    direct_connections: NonNegativeInt | None = Field(None, alias="directConnections")
    """Slots of connectionLimit its pool never takes, so a migration's direct DSN gets in while pooled
    clients are busy. Absent: 1 for a migrate app, 0 for the others (they connect through the pool)."""

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


class ExternalRoleConfig(ConfigModel):
    """`externalRoles.<name>`: a role managed elsewhere (Grafana, analytics) that holds slots on the
    server: not created here, but counted in the budget."""

    connection_limit: Connections = Field(alias="connectionLimit")
    """The connections it holds at most, as set where it is managed; counted in the budget (PgBouncer does
    not cap it: it connects to Postgres directly)."""


class PlatformConfig(ConfigModel):
    """A stack's config: the `postgres-platform:*` keys of its `Pulumi.<stack>.yaml`, checked as a whole
    before anything is declared (every problem one line naming its key and value)."""

    target: Literal["local", "hetzner", "existing"]
    """Where the server runs: local (Docker on this machine), hetzner (Hetzner Cloud hosts) or existing
    (a running server the program adopts)."""
    postgres: PostgresConfig
    """The server and its connection slots."""
    pgbouncer: PgBouncerConfig | None = None
    """PgBouncer; required but for target existing, where it is optional."""
    databases: Annotated[dict[DatabaseName, DatabaseConfig], Field(min_length=1)]
    """The app databases by name, at least one (not postgres or a template)."""
    apps: Annotated[dict[RoleName, AppConfig], Field(min_length=1)]
    """The apps by name (an app's login role and its pool database take its name), at least one."""
    external_roles: dict[RoleName, ExternalRoleConfig] = Field({}, alias="externalRoles")
    """Roles managed elsewhere that hold slots, by name (default none)."""
    local: LocalConfig | None = None
    """Ports on this machine; only for target local."""
    hetzner: HetznerConfig | None = None
    """The Hetzner hosts; required for target hetzner, only there."""
    existing: ExistingConfig | None = None
    """The adopted server; required for target existing, only there."""
    backup: BackupConfig | None = None
    """pgBackRest backups; required for every Hetzner stack, optional locally, refused for target
    existing."""
    monitoring: MonitoringConfig = MonitoringConfig()
    """The exporters (on by default wherever the program runs Postgres), and optionally Prometheus and
    Alertmanager."""
    image_base: Image = Field(DEFAULT_BASE, alias="imageBase")
    """The image the images of images/ are built FROM: Debian's official slim trixie by default, or
    scripts/base_image.sh's where no registry serves it."""

    def local_ports(self) -> LocalConfig:
        return self.local or LocalConfig()

    def exporters_run(self) -> bool:
        """Whether the exporters run beside the server: monitoring.exporters, by default wherever the
        program runs Postgres (not for target existing)."""
        return not self.adopted if self.monitoring.exporters is None else self.monitoring.exporters

    def pooled_apps(self) -> list[str]:
        """Apps with a PgBouncer pool (none where there is no PgBouncer: an adopted server without one)."""
        return [app for app, spec in self.apps.items() if spec.pooled and self.pgbouncer is not None]

    def server_image(self) -> str:
        """The image of a server the program runs (config checks require postgres.image for those)."""
        assert self.postgres.image is not None, "target existing runs no Postgres"
        return self.postgres.image

    def required_pgbouncer(self) -> PgBouncerConfig:
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
        schemas = self.app_schemas(app)
        full = set(schemas) == set(self.databases[spec.database].schemas)
        subset = None if full else self.ordered_schemas(spec.database, schemas)
        return group_role(spec.database, level_of(spec.access), subset)

    def ordered_schemas(self, database: str, schemas: tuple[str, ...]) -> tuple[str, ...]:
        return tuple(s for s in self.databases[database].schemas if s in schemas)
