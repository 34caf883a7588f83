"""The access plan: every role, grant, default privilege and revoke, derived once from the config.

Pure data (no pulumi): the roles component turns it into resources and the SQL renderer into a psql
script, so both always say the same thing.

| level   | database            | schemas | tables                         | sequences            |
|---------|---------------------|---------|--------------------------------|----------------------|
| read    | CONNECT             | USAGE   | SELECT                         | SELECT               |
| write   | CONNECT, TEMPORARY  | USAGE   | SELECT, INSERT, UPDATE, DELETE | SELECT, USAGE, UPDATE|
| migrate | write + member of `<db>_owner` (owns the database and its schemas: DDL)                |
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Literal

from components.config import AccessLevel, PlatformConfig
from components.names import AUTH_ROLE, AUTH_SCHEMA, SUPERUSER, owner_role

ObjectType = Literal["database", "schema", "table", "sequence", "function"]

DATABASE_PRIVILEGES: dict[AccessLevel, tuple[str, ...]] = {
    "read": ("CONNECT",),
    "write": ("CONNECT", "TEMPORARY"),
    "migrate": ("CONNECT", "TEMPORARY"),
}
TABLE_PRIVILEGES: dict[AccessLevel, tuple[str, ...]] = {
    "read": ("SELECT",),
    "write": ("SELECT", "INSERT", "UPDATE", "DELETE"),
    "migrate": ("SELECT", "INSERT", "UPDATE", "DELETE"),
}
SEQUENCE_PRIVILEGES: dict[AccessLevel, tuple[str, ...]] = {
    "read": ("SELECT",),
    "write": ("SELECT", "USAGE", "UPDATE"),
    "migrate": ("SELECT", "USAGE", "UPDATE"),
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
class Membership:
    member: str
    group: str


@dataclass(frozen=True)
class MigrationRevoke:
    """Roles that must not write `table`; applied where it exists, on every up."""

    database: str
    table: str  # schema.table
    roles: tuple[str, ...]


@dataclass(frozen=True)
class Database:
    name: str
    owner: str
    schemas: tuple[str, ...]
    migration_tables: tuple[str, ...]
    apps: tuple[str, ...]


@dataclass(frozen=True)
class AccessPlan:
    owners: tuple[Role, ...]
    logins: tuple[Role, ...]  # apps, then the PgBouncer auth role
    databases: tuple[Database, ...]
    grants: tuple[Grant, ...]
    default_privileges: tuple[DefaultPrivilege, ...]
    memberships: tuple[Membership, ...]
    migration_revokes: tuple[MigrationRevoke, ...]


def plan(config: PlatformConfig) -> AccessPlan:
    databases = tuple(
        Database(
            name=name,
            owner=owner_role(name),
            schemas=tuple(db.schemas),
            migration_tables=db.migration_table_names(),
            apps=tuple(app for app, spec in config.apps.items() if spec.database == name),
        )
        for name, db in config.databases.items()
    )
    owners = tuple(Role(db.owner, login=False, connection_limit=-1) for db in databases)
    logins = (
        *(
            Role(
                name,
                login=True,
                connection_limit=spec.connection_limit,
                statement_timeout_ms=spec.statement_timeout_ms,
                idle_in_transaction_timeout_ms=spec.idle_in_transaction_timeout_ms,
            )
            for name, spec in config.apps.items()
        ),
        Role(AUTH_ROLE, login=True, connection_limit=config.auth_role_limit()),
    )

    grants: list[Grant] = []
    defaults: list[DefaultPrivilege] = []
    memberships: list[Membership] = []
    revokes: list[MigrationRevoke] = []
    for db in databases:
        # PUBLIC may neither connect nor create in `public` (USAGE stays: extensions live there).
        grants.append(Grant("public", db.name, "database", ()))
        grants.append(Grant("public", db.name, "schema", ("USAGE",), schema="public"))
        grants.append(Grant(AUTH_ROLE, db.name, "database", ("CONNECT",)))
        grants.append(Grant(AUTH_ROLE, db.name, "schema", ("USAGE",), schema=AUTH_SCHEMA))
        # The auth schema holds only the lookup function: its EXECUTE is the auth role's alone.
        grants.append(Grant("public", db.name, "function", (), schema=AUTH_SCHEMA))
        grants.append(Grant(AUTH_ROLE, db.name, "function", ("EXECUTE",), schema=AUTH_SCHEMA))
        creators = [db.owner] + [a for a in db.apps if config.apps[a].access == "migrate"]
        for app in db.apps:
            level = config.apps[app].access
            grants.append(Grant(app, db.name, "database", DATABASE_PRIVILEGES[level]))
            if level == "migrate":
                memberships.append(Membership(member=app, group=db.owner))
            for schema in config.app_schemas(app):
                grants.append(Grant(app, db.name, "schema", ("USAGE",), schema=schema))
                grants.append(Grant(app, db.name, "table", TABLE_PRIVILEGES[level], schema=schema))
                grants.append(Grant(app, db.name, "sequence", SEQUENCE_PRIVILEGES[level], schema=schema))
                for creator in creators:
                    if creator == app:
                        continue  # an owner needs no default privileges on its own objects
                    defaults.append(DefaultPrivilege(app, db.name, creator, schema, "table", TABLE_PRIVILEGES[level]))
                    defaults.append(
                        DefaultPrivilege(app, db.name, creator, schema, "sequence", SEQUENCE_PRIVILEGES[level])
                    )
        blocked = tuple(a for a in db.apps if config.apps[a].access != "migrate")
        if blocked:
            revokes.extend(MigrationRevoke(db.name, table, blocked) for table in db.migration_tables)
    return AccessPlan(
        owners=owners,
        logins=logins,
        databases=databases,
        grants=tuple(grants),
        default_privileges=tuple(defaults),
        memberships=tuple(memberships),
        migration_revokes=tuple(revokes),
    )


def auth_function_body() -> str:
    """SCRAM secret for PgBouncer's auth_query; nothing for roles a pooler must never log in as.

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
