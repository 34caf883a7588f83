"""The live budget: who holds a running server's slots now, against what the stack declares.

`snapshot()` reads the server (client backends only); `assess()` is pure: it compares a snapshot with
the config's budget and names every drift.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import psycopg
from psycopg.conninfo import make_conninfo

from postgres_platform.model import access, budget
from postgres_platform.model.config import PlatformConfig


@dataclass(frozen=True)
class Role:
    name: str
    superuser: bool
    limit: int  # rolconnlimit (-1: none)
    connections: int  # client backends now


@dataclass(frozen=True)
class SuperuserSession:
    database: str
    application_name: str
    client_addr: str | None
    count: int


@dataclass(frozen=True)
class Snapshot:
    max_connections: int
    superuser_reserved: int
    reserved: int  # reserved_connections (PostgreSQL 16; 0 before)
    roles: tuple[Role, ...]
    superuser_sessions: tuple[SuperuserSession, ...]


ROLES = """
SELECT r.rolname, r.rolsuper, r.rolconnlimit, count(a.pid) FILTER (WHERE a.backend_type = 'client backend')
FROM pg_catalog.pg_roles r LEFT JOIN pg_catalog.pg_stat_activity a ON a.usesysid = r.oid
WHERE r.rolcanlogin OR a.pid IS NOT NULL
GROUP BY 1, 2, 3 ORDER BY 1
"""
SUPERUSER_SESSIONS = """
SELECT coalesce(a.datname, ''), a.application_name, host(a.client_addr), count(*)
FROM pg_catalog.pg_stat_activity a JOIN pg_catalog.pg_roles r ON r.oid = a.usesysid
WHERE r.rolsuper AND a.backend_type = 'client backend' AND a.pid <> pg_catalog.pg_backend_pid()
GROUP BY 1, 2, 3 ORDER BY 4 DESC, 1, 2
"""


def snapshot(dsn: str) -> Snapshot:
    with psycopg.connect(dsn, autocommit=True) as conn:

        def setting(name: str) -> int:
            row = conn.execute("SELECT setting FROM pg_catalog.pg_settings WHERE name = %s", (name,)).fetchone()
            return int(row[0]) if row else 0

        roles = tuple(Role(str(n), bool(s), int(lim), int(c)) for n, s, lim, c in conn.execute(ROLES).fetchall())
        sessions = tuple(
            SuperuserSession(str(d), str(app), None if addr is None else str(addr), int(c))
            for d, app, addr, c in conn.execute(SUPERUSER_SESSIONS).fetchall()
        )
        return Snapshot(
            setting("max_connections"),
            setting("superuser_reserved_connections"),
            setting("reserved_connections"),
            roles,
            sessions,
        )


def assess(config: PlatformConfig, live: Snapshot) -> dict[str, Any]:
    """The report of scripts/live_budget.py --json; `problems` names each drift."""
    declared = {e.role: e for e in budget.entries(config) if e.role != budget.PGBACKREST}  # that one is no role
    on_server = {r.name: r for r in live.roles}
    usable = live.max_connections - live.superuser_reserved - live.reserved
    connected = sum(r.connections for r in live.roles)
    problems: list[str] = []
    if live.max_connections != config.postgres.max_connections:
        problems.append(f"max_connections is {live.max_connections} on the server, "
                        f"{config.postgres.max_connections} in the config")  # fmt: skip
    if connected > usable:
        problems.append(f"{connected} client connections, more than the {usable} usable slots")
    rows = []
    for name in sorted(set(declared) | set(on_server)):
        entry, role = declared.get(name), on_server.get(name)
        if role is None:
            problems.append(
                f"role {name} is declared (limit {entry.limit if entry else '?'}) but missing on the server"
            )
            continue
        kind = "superuser" if role.superuser else (entry.kind if entry else "undeclared")
        if entry is not None and role.limit != entry.limit:
            problems.append(f"role {name} has CONNECTION LIMIT {role.limit} on the server, {entry.limit} declared")
        if entry is None and not role.superuser and role.connections:
            problems.append(f"role {name} is not declared but holds {role.connections} connection(s)")
        if role.limit >= 0 and role.connections >= role.limit and role.connections:
            problems.append(f"role {name} is at its limit: {role.connections} of {role.limit}")
        if entry is None and not role.connections and not role.superuser:
            continue  # a login role nobody uses and nobody declared: not a slot holder
        rows.append({"role": name, "kind": kind, "declared": entry.limit if entry else None,
                     "serverLimit": role.limit, "connections": role.connections})  # fmt: skip
    return {
        "maxConnections": live.max_connections,
        "usable": usable,
        "connected": connected,
        "roles": rows,
        "superuserSessions": [
            {
                "database": s.database,
                "applicationName": s.application_name,
                "clientAddr": s.client_addr,
                "count": s.count,
            }
            for s in live.superuser_sessions
        ],
        "problems": problems,
    }


# --- grants (runbook 004, "how to diagnose") ----------------------------------------------------

FIX = "run `pulumi up` (it re-applies the plan) or scripts/render_sql.py"
TABLE_KINDS = "('r', 'p', 'v', 'm', 'f')"
ROLE_ROW = """
SELECT r.rolcanlogin, r.rolconnlimit, r.rolsuper OR r.rolcreaterole OR r.rolcreatedb OR r.rolreplication
  OR r.rolbypassrls, coalesce((SELECT pg_catalog.array_agg(g.rolname::text ORDER BY g.rolname)
    FROM pg_catalog.pg_auth_members m JOIN pg_catalog.pg_roles g ON g.oid = m.roleid WHERE m.member = r.oid), '{}'),
  coalesce(r.rolconfig, '{}')
FROM pg_catalog.pg_roles r WHERE r.rolname = %s
"""
OBJECTS = f"""
SELECT c.relkind = 'S', pg_catalog.quote_ident(n.nspname) || '.' || pg_catalog.quote_ident(c.relname)
FROM pg_catalog.pg_class c JOIN pg_catalog.pg_namespace n ON n.oid = c.relnamespace
WHERE n.nspname = %s AND (c.relkind IN {TABLE_KINDS} OR c.relkind = 'S') ORDER BY 2
"""
DEFAULT_ACL = """
SELECT coalesce(pg_catalog.array_agg(a.privilege_type::text), '{}') FROM pg_catalog.pg_default_acl d
CROSS JOIN LATERAL pg_catalog.aclexplode(d.defaclacl) a
WHERE d.defaclrole = %s::pg_catalog.regrole AND d.defaclnamespace = %s::pg_catalog.regnamespace
  AND d.defaclobjtype = %s AND a.grantee = %s::pg_catalog.regrole
"""


def _grant_problems(session: psycopg.Connection[Any], group: access.Group, migration_tables: set[str]) -> list[str]:
    """Per table and sequence of the group's schemas: exactly its level's privileges (a migration
    table: without the writes the plan revokes)."""
    problems = []
    for schema in group.schemas:
        for is_sequence, name in session.execute(OBJECTS, (schema,)).fetchall():
            wanted = (access.SEQUENCE_PRIVILEGES if is_sequence else access.TABLE_PRIVILEGES)[group.level]
            if name in migration_tables:
                wanted = tuple(p for p in wanted if p not in access.MIGRATION_TABLE_REVOKES)
            check = "has_sequence_privilege" if is_sequence else "has_table_privilege"
            every = ("SELECT", "USAGE", "UPDATE") if is_sequence else ("SELECT", "INSERT", "UPDATE", "DELETE")
            held = {p for p in every if session.execute(
                f"SELECT pg_catalog.{check}(%s, %s, %s)", (group.name, name, p)).fetchone() == (True,)}  # fmt: skip
            kind = "sequence" if is_sequence else "table"
            if set(wanted) - held:
                problems.append(f"{group.database}: {group.name} lacks {', '.join(sorted(set(wanted) - held))} "
                                f"on {kind} {name}")  # fmt: skip
            if held - set(wanted):
                problems.append(f"{group.database}: {group.name} has {', '.join(sorted(held - set(wanted)))} "
                                f"on {kind} {name} beyond {group.level}")  # fmt: skip
    return problems


def check_grants(config: PlatformConfig, dsn: str) -> list[dict[str, str]]:
    """Every declared role's attributes and memberships, each group's effective privileges on every
    table and sequence of its schemas, the default privileges, the migration-table revokes: each
    failure with its fix."""
    plan = access.plan(config)
    failures: list[str] = []
    with psycopg.connect(dsn, autocommit=True) as conn:
        for role in plan.roles:
            row = conn.execute(ROLE_ROW, (role.name,)).fetchone()
            if row is None:
                failures.append(f"role {role.name} does not exist")
                continue
            login, limit, privileged, member_of, settings = row
            if (bool(login), int(limit)) != (role.login, role.connection_limit):
                failures.append(f"role {role.name}: LOGIN {login}, CONNECTION LIMIT {limit}; declared LOGIN "
                                f"{role.login}, CONNECTION LIMIT {role.connection_limit}")  # fmt: skip
            if privileged:
                failures.append(f"role {role.name} has SUPERUSER, CREATEROLE, CREATEDB, REPLICATION or BYPASSRLS")
            if sorted(member_of) != sorted(role.member_of):
                failures.append(
                    f"role {role.name} is a member of {sorted(member_of)}, declared {sorted(role.member_of)}"
                )
            if role.assume_role is not None and f"role={role.assume_role}" not in settings:
                failures.append(f"role {role.name} does not start as {role.assume_role} (ALTER ROLE ... SET role)")
    for db in plan.databases:
        with psycopg.connect(make_conninfo(dsn, dbname=db.name), autocommit=True) as session:
            for group in db.groups:
                # schema.table as quote_ident renders it: config names are lower-case identifiers.
                revoked = {r.table for r in plan.migration_revokes if group.name in r.roles}
                failures += _grant_problems(session, group, revoked)
            for default in plan.default_privileges:
                if default.database != db.name:
                    continue
                objtype = "r" if default.object_type == "table" else "S"
                params = (default.owner, default.schema, objtype, default.role)
                (held,) = session.execute(DEFAULT_ACL, params).fetchone() or ([],)
                if set(default.privileges) - set(held):
                    what = f"{default.object_type}s of {default.owner} in {default.schema}"
                    failures.append(f"{db.name}: no default {', '.join(default.privileges)} on new {what} "
                                    f"for {default.role}")  # fmt: skip
            for revoke in plan.migration_revokes:
                if revoke.database != db.name:
                    continue
                for role_name in revoke.roles:
                    row = session.execute(
                        "SELECT pg_catalog.to_regclass(%s) IS NOT NULL AND (pg_catalog.has_table_privilege(%s, %s, "
                        "'INSERT') OR pg_catalog.has_table_privilege(%s, %s, 'UPDATE') OR "
                        "pg_catalog.has_table_privilege(%s, %s, 'DELETE'))",
                        (revoke.table, role_name, revoke.table, role_name, revoke.table, role_name, revoke.table),
                    ).fetchone()
                    if row == (True,):
                        failures.append(f"{db.name}: {role_name} may write migration table {revoke.table}")
    return [{"problem": f, "fix": FIX} for f in failures]
