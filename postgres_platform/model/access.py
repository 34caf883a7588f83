"""The access plan: every role, grant, default privilege and revoke, derived once from the config.

Pure data (no pulumi): the DatabaseAccess component turns it into resources and the SQL renderer into a
psql script, so both always say the same thing.

Grants go to per-database NOLOGIN group roles, never to an app: `<db>_read` and `<db>_write` (or a
group for the schema subset an app is limited to). An app's login role only carries its CONNECTION
LIMIT, timeouts, password and membership, so adding an app adds a role and its password, not grants.

| group          | database            | schemas | tables                         | sequences             |
|----------------|---------------------|---------|--------------------------------|-----------------------|
| `<db>_read`    | CONNECT             | USAGE   | SELECT                         | SELECT                |
| `<db>_write`   | CONNECT, TEMPORARY  | USAGE   | SELECT, INSERT, UPDATE, DELETE | SELECT, USAGE, UPDATE |
| `<db>_owner`   | owns the database and its schemas: DDL                                                |

A migrate app is a member of `<db>_write` and `<db>_owner`, and its sessions start as `<db>_owner`
(`ALTER ROLE ... SET ROLE`): what its migrations create is owned by `<db>_owner`, so default
privileges FROM the owner cover it and any other migrate app of the database can alter it.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Literal

from postgres_platform.model.budget import MONITORING_CONNECTIONS, monitored
from postgres_platform.model.config import GroupLevel, PlatformConfig, level_of
from postgres_platform.model.names import (
    AUTH_ROLE,
    AUTH_SCHEMA,
    MONITORING_ROLE,
    PG_MONITOR,
    SUPERUSER,
    group_role,
    owner_role,
)

ObjectType = Literal["database", "schema", "table", "sequence", "function"]


DATABASE_PRIVILEGES: dict[GroupLevel, tuple[str, ...]] = {"read": ("CONNECT",), "write": ("CONNECT", "TEMPORARY")}
TABLE_PRIVILEGES: dict[GroupLevel, tuple[str, ...]] = {
    "read": ("SELECT",),
    "write": ("SELECT", "INSERT", "UPDATE", "DELETE"),
}
SEQUENCE_PRIVILEGES: dict[GroupLevel, tuple[str, ...]] = {
    "read": ("SELECT",),
    "write": ("SELECT", "USAGE", "UPDATE"),
}
# What non-migrate apps lose on migration tables: they may read the version, never stamp it.
MIGRATION_TABLE_REVOKES = ("INSERT", "UPDATE", "DELETE", "TRUNCATE")


@dataclass(frozen=True)
class Role:
    name: str
    login: bool
    connection_limit: int  # -1 (no limit) only for NOLOGIN roles, which hold no slot
    statement_timeout_ms: int | None = None
    idle_in_transaction_timeout_ms: int | None = None
    member_of: tuple[str, ...] = ()  # exactly these memberships (the provider revokes any other)
    assume_role: str | None = None  # sessions start as this role (SET ROLE at login)
    database: str | None = None  # an app's login: its database, the only one it can own objects in


@dataclass(frozen=True)
class Grant:
    """Exactly these privileges (the set is replaced, so an empty tuple revokes all)."""

    role: str  # "public" means PUBLIC
    database: str
    object_type: ObjectType
    privileges: tuple[str, ...]
    schema: str | None = None
    objects: tuple[str, ...] = ()  # empty: every object of the type in the schema

    @property
    def key(self) -> str:
        """A stable resource name: unique per role, database, type, schema and objects."""
        parts = [self.database, self.role, self.object_type, self.schema or "", *self.objects]
        return "-".join(p for p in parts if p)


@dataclass(frozen=True)
class DefaultPrivilege:
    """Objects `owner` creates later in `schema` are granted to `role` without a re-grant."""

    role: str
    database: str
    owner: str
    schema: str
    object_type: Literal["table", "sequence"]
    privileges: tuple[str, ...]

    @property
    def key(self) -> str:
        return f"{self.database}-{self.owner}-{self.role}-{self.object_type}-{self.schema}"


@dataclass(frozen=True)
class MigrationRevoke:
    """Groups that must not write `table`; applied where it exists, on every up."""

    database: str
    table: str  # schema.table
    roles: tuple[str, ...]


@dataclass(frozen=True)
class OwnershipMove:
    """On an adopted server, for a database with a migrate app: what its app schemas hold (tables,
    views, materialized views, sequences, functions) and the schemas themselves go to `owner`, so
    migrations running as the owner can alter them. Never outside `schemas`, never an extension's
    object, never one of `keep` (`schema.object`, e.g. a view a refresher role owns)."""

    database: str
    owner: str
    schemas: tuple[str, ...]
    keep: tuple[str, ...]


@dataclass(frozen=True)
class Group:
    """A NOLOGIN role holding one level's privileges on some schemas of one database."""

    name: str
    database: str
    level: GroupLevel
    schemas: tuple[str, ...]


@dataclass(frozen=True)
class Database:
    name: str
    owner: str
    schemas: tuple[str, ...]
    migration_tables: tuple[str, ...]
    groups: tuple[Group, ...]


@dataclass(frozen=True)
class AccessPlan:
    owners: tuple[Role, ...]  # NOLOGIN: own databases and schemas
    groups: tuple[Role, ...]  # NOLOGIN: hold the grants and default privileges
    logins: tuple[Role, ...]  # apps, then the PgBouncer auth role
    databases: tuple[Database, ...]
    grants: tuple[Grant, ...]
    default_privileges: tuple[DefaultPrivilege, ...]
    migration_revokes: tuple[MigrationRevoke, ...]
    ownership: tuple[OwnershipMove, ...] = ()
    admin: str = SUPERUSER  # who applies the plan
    admin_superuser: bool = True  # False on a managed server: CREATEROLE only
    adopted: bool = False  # databases and schemas exist: never created, their owners never changed
    has_pgbouncer: bool = True  # a PgBouncer: its auth role, schema and lookup function
    # An adopted server locked down (existing.lockdown): PUBLIC's CONNECT on its databases is beyond the plan,
    # each group and external role holds CONNECT itself (docs/operations/adopting-a-running-server.md).
    lockdown: bool = False
    external_roles: tuple[str, ...] = ()  # roles managed elsewhere (externalRoles): not created here

    @property
    def roles(self) -> tuple[Role, ...]:
        """In creation order: a role's groups exist before it is made a member."""
        return (*self.owners, *self.groups, *self.logins)


def _groups(config: PlatformConfig, database: str) -> tuple[Group, ...]:
    """The database's read and write groups over all its schemas, then one per schema subset apps use."""
    schemas = tuple(config.databases[database].schemas)
    groups = {
        group_role(database, level): Group(group_role(database, level), database, level, schemas)
        for level in ("read", "write")
    }
    for app, spec in config.apps.items():
        if spec.database == database:
            name = config.app_group(app)
            ordered = config.ordered_schemas(database, config.app_schemas(app))
            groups.setdefault(name, Group(name, database, level_of(spec.access), ordered))
    return tuple(groups.values())


def _login_role(config: PlatformConfig, app: str, login: str) -> Role:
    spec = config.apps[app]
    owner = owner_role(spec.database)
    migrate = spec.access == "migrate"
    return Role(
        login,
        login=True,
        connection_limit=spec.connection_limit,
        statement_timeout_ms=spec.statement_timeout_ms,
        idle_in_transaction_timeout_ms=spec.idle_in_transaction_timeout_ms,
        member_of=(config.app_group(app), owner) if migrate else (config.app_group(app),),
        assume_role=owner if migrate else None,
        database=spec.database,
    )


def plan(config: PlatformConfig) -> AccessPlan:
    databases = tuple(
        Database(
            name=name,
            owner=owner_role(name),
            schemas=tuple(db.schemas),
            migration_tables=db.migration_table_names(),
            groups=_groups(config, name),
        )
        for name, db in config.databases.items()
    )
    owners = tuple(Role(db.owner, login=False, connection_limit=-1) for db in databases)
    groups = tuple(Role(g.name, login=False, connection_limit=-1) for db in databases for g in db.groups)
    has_pgbouncer = config.pgbouncer is not None
    logins = (
        *(_login_role(config, app, login.role) for app in config.apps for login in config.logins(app)),
        *([Role(AUTH_ROLE, login=True, connection_limit=config.auth_role_limit())] if has_pgbouncer else []),
        # The exporters' login (render.monitoring): pg_monitor's reads, the budget's hard limit.
        *(
            [Role(MONITORING_ROLE, login=True, connection_limit=MONITORING_CONNECTIONS, member_of=(PG_MONITOR,))]
            if monitored(config)
            else []
        ),
    )
    existing = config.existing
    # On an adopted server others create tables too (a migration runner logged in as postgres): their
    # new tables get the groups' grants as well, or every migration would need its own GRANT.
    creators = existing.creators() if existing is not None else ()
    lockdown = existing is not None and existing.lockdown

    grants: list[Grant] = []
    defaults: list[DefaultPrivilege] = []
    revokes: list[MigrationRevoke] = []
    for db in databases:
        if not config.adopted:
            # PUBLIC may neither connect nor create in `public` (USAGE stays: extensions live there). Not
            # on an adopted server: roles nobody declared may connect through PUBLIC today
            # (docs/decisions/0005-public-kept-on-adopted-databases.md).
            grants.append(Grant("public", db.name, "database", ()))
            grants.append(Grant("public", db.name, "schema", ("USAGE",), schema="public"))
        if lockdown:
            # PUBLIC's CONNECT goes (the re-apply step revokes it once no undeclared role depends on it):
            # the roles declared elsewhere connect by their own grant, the apps through their groups'.
            grants += [Grant(role, db.name, "database", ("CONNECT",)) for role in config.external_roles]
        if has_pgbouncer:
            grants.append(Grant(AUTH_ROLE, db.name, "database", ("CONNECT",)))
            grants.append(Grant(AUTH_ROLE, db.name, "schema", ("USAGE",), schema=AUTH_SCHEMA))
            # The auth schema holds only the lookup function: its EXECUTE is the auth role's alone.
            grants.append(Grant("public", db.name, "function", (), schema=AUTH_SCHEMA))
            grants.append(Grant(AUTH_ROLE, db.name, "function", ("EXECUTE",), schema=AUTH_SCHEMA))
        for group in db.groups:
            grants.append(Grant(group.name, db.name, "database", DATABASE_PRIVILEGES[group.level]))
            for schema in group.schemas:
                grants.append(Grant(group.name, db.name, "schema", ("USAGE",), schema=schema))
                grants.append(Grant(group.name, db.name, "table", TABLE_PRIVILEGES[group.level], schema=schema))
                grants.append(Grant(group.name, db.name, "sequence", SEQUENCE_PRIVILEGES[group.level], schema=schema))
                # Migrate apps create as the owner, so the owner's default privileges cover every new object.
                for creator in dict.fromkeys((db.owner, *creators)):
                    defaults.append(
                        DefaultPrivilege(group.name, db.name, creator, schema, "table", TABLE_PRIVILEGES[group.level])
                    )
                    defaults.append(
                        DefaultPrivilege(
                            group.name, db.name, creator, schema, "sequence", SEQUENCE_PRIVILEGES[group.level]
                        )
                    )
        for table in db.migration_tables:
            schema = table.split(".", 1)[0]
            # Migrate apps stamp these as the owner; every write group (and so every write app) may not.
            blocked = tuple(g.name for g in db.groups if g.level == "write" and schema in g.schemas)
            if blocked:
                revokes.append(MigrationRevoke(db.name, table, blocked))
    ownership = tuple(
        OwnershipMove(
            db.name,
            db.owner,
            db.schemas,
            tuple(k.split(".", 1)[1] for k in existing.keep_owners if k.split(".", 1)[0] == db.name),
        )
        for db in databases
        if existing is not None and any(s.database == db.name and s.access == "migrate" for s in config.apps.values())
    )
    return AccessPlan(
        owners=owners,
        groups=groups,
        logins=logins,
        databases=databases,
        grants=tuple(grants),
        default_privileges=tuple(defaults),
        migration_revokes=tuple(revokes),
        ownership=ownership,
        admin=existing.admin_user if existing is not None else SUPERUSER,
        admin_superuser=existing.admin_superuser if existing is not None else True,
        adopted=config.adopted,
        has_pgbouncer=has_pgbouncer,
        lockdown=lockdown,
        external_roles=tuple(config.external_roles),
    )


def auth_function_body() -> str:
    """SCRAM secret for PgBouncer's auth_query; nothing for roles PgBouncer must never log in as.

    Every name is schema-qualified and even `=` is pg_catalog's, so a caller's search_path cannot
    substitute objects (the function also gets SET search_path, see sql.harden_auth_function).
    """
    return f"""
SELECT a.rolname::pg_catalog.text, a.rolpassword
FROM pg_catalog.pg_authid AS a
WHERE a.rolname OPERATOR(pg_catalog.=) p_usename::pg_catalog.name
  AND a.rolcanlogin
  AND NOT a.rolsuper
  AND NOT a.rolreplication
  AND NOT a.rolbypassrls
  AND a.rolname OPERATOR(pg_catalog.<>) '{AUTH_ROLE}'::pg_catalog.name
  AND a.rolname OPERATOR(pg_catalog.<>) '{SUPERUSER}'::pg_catalog.name
  AND (a.rolvaliduntil IS NULL OR a.rolvaliduntil OPERATOR(pg_catalog.>) pg_catalog.now())
"""
