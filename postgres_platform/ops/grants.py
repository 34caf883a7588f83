"""The grant check: a running server's roles and privileges against the plan.

`check_grants()` names each failure with its fix. Set-based: a handful of queries per database however
many tables it holds (each reads a catalog once), where one has_table_privilege per table and privilege
made 42,062 on 3,000 tables.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

import psycopg
from psycopg.conninfo import make_conninfo

from postgres_platform.model import access
from postgres_platform.model.config import PlatformConfig
from postgres_platform.model.names import SUPERUSER
from postgres_platform.render import sql

FIX = "run `pulumi up` (it re-applies the plan) or scripts/render_sql.py"
TABLE_KINDS = "('r', 'p', 'v', 'm', 'f')"
ROLE_ROWS = """
SELECT r.rolname, r.rolcanlogin, r.rolconnlimit, r.rolsuper OR r.rolcreaterole OR r.rolcreatedb OR r.rolreplication
  OR r.rolbypassrls, coalesce((SELECT pg_catalog.array_agg(DISTINCT g.rolname::text ORDER BY g.rolname::text)
    FROM pg_catalog.pg_auth_members m JOIN pg_catalog.pg_roles g ON g.oid = m.roleid WHERE m.member = r.oid), '{}'),
  coalesce(r.rolconfig, '{}')
FROM pg_catalog.pg_roles r WHERE r.rolname = ANY (%s)
"""
# Per group, table or sequence of its schemas and privilege of its level: the ones it does not hold
# (has_*_privilege: effective), less the migration tables' writes the plan revokes.
LACKING_ON_RELATIONS = f"""
WITH wanted AS (SELECT * FROM unnest(%s::text[], %s::text[], %s::text[], %s::text[])
    AS w (grantee, schema, kind, privilege)),
  exempt AS (SELECT * FROM unnest(%s::text[], %s::text[], %s::text[]) AS e (grantee, relation, privilege))
SELECT w.grantee, w.kind, pg_catalog.quote_ident(n.nspname) || '.' || pg_catalog.quote_ident(c.relname),
  pg_catalog.array_agg(w.privilege ORDER BY w.privilege)
FROM wanted w JOIN pg_catalog.pg_roles r ON r.rolname = w.grantee
JOIN pg_catalog.pg_namespace n ON n.nspname = w.schema
JOIN pg_catalog.pg_class c ON c.relnamespace = n.oid
  AND CASE WHEN w.kind = 'sequence' THEN c.relkind = 'S' ELSE c.relkind IN {TABLE_KINDS} END
WHERE NOT EXISTS (SELECT 1 FROM exempt e WHERE e.grantee = w.grantee AND e.relation = n.nspname || '.' || c.relname
    AND e.privilege = w.privilege)
  AND NOT CASE WHEN w.kind = 'sequence' THEN pg_catalog.has_sequence_privilege(r.oid, c.oid, w.privilege)
    ELSE pg_catalog.has_table_privilege(r.oid, c.oid, w.privilege) END
GROUP BY 1, 2, 3 ORDER BY 1, 3
"""
# The database, schema and function privileges the plan grants (not PUBLIC's), where they are missing.
LACKING_ELSEWHERE = """
WITH wanted AS (SELECT * FROM unnest(%s::text[], %s::text[], %s::text[], %s::text[])
    AS w (grantee, kind, name, privilege))
SELECT w.grantee, w.kind, pg_catalog.quote_ident(w.name), pg_catalog.array_agg(w.privilege ORDER BY w.privilege)
FROM wanted w JOIN pg_catalog.pg_roles r ON r.rolname = w.grantee
WHERE (w.kind = 'database' AND NOT pg_catalog.has_database_privilege(r.oid, w.name, w.privilege))
  OR (w.kind = 'schema'
    AND NOT coalesce(pg_catalog.has_schema_privilege(r.oid, pg_catalog.to_regnamespace(w.name), w.privilege), false))
GROUP BY 1, 2, 3
UNION ALL
SELECT w.grantee, 'function', pg_catalog.quote_ident(n.nspname) || '.' || pg_catalog.quote_ident(p.proname) || '('
    || pg_catalog.pg_get_function_identity_arguments(p.oid) || ')',
  pg_catalog.array_agg(w.privilege ORDER BY w.privilege)
FROM wanted w JOIN pg_catalog.pg_roles r ON r.rolname = w.grantee
JOIN pg_catalog.pg_namespace n ON n.nspname = w.name JOIN pg_catalog.pg_proc p ON p.pronamespace = n.oid
WHERE w.kind = 'function' AND NOT pg_catalog.has_function_privilege(r.oid, p.oid, w.privilege)
GROUP BY 1, 2, 3 ORDER BY 1, 3
"""
# The plan's default privileges (by index) that pg_default_acl does not hold in full.
LACKING_DEFAULTS = """
SELECT w.i FROM unnest(%s::int[], %s::text[], %s::text[], %s::text[], %s::text[], %s::text[])
  AS w (i, creator, schema, objtype, grantee, privileges)
WHERE NOT pg_catalog.string_to_array(w.privileges, ',') <@ coalesce((
  SELECT pg_catalog.array_agg(a.privilege_type::text) FROM pg_catalog.pg_default_acl d
  CROSS JOIN LATERAL pg_catalog.aclexplode(d.defaclacl) a
  JOIN pg_catalog.pg_roles cr ON cr.oid = d.defaclrole JOIN pg_catalog.pg_namespace n ON n.oid = d.defaclnamespace
  JOIN pg_catalog.pg_roles g ON g.oid = a.grantee
  WHERE cr.rolname = w.creator AND n.nspname = w.schema AND d.defaclobjtype::text = w.objtype
    AND g.rolname = w.grantee), '{}')
ORDER BY 1
"""
MIGRATION_WRITES = """
SELECT w.grantee, w.relation FROM unnest(%s::text[], %s::text[]) AS w (grantee, relation)
JOIN pg_catalog.pg_roles r ON r.rolname = w.grantee
JOIN pg_catalog.pg_class c ON c.oid = pg_catalog.to_regclass(w.relation)
WHERE pg_catalog.has_table_privilege(r.oid, c.oid, 'INSERT') OR pg_catalog.has_table_privilege(r.oid, c.oid, 'UPDATE')
  OR pg_catalog.has_table_privilege(r.oid, c.oid, 'DELETE')
ORDER BY 1, 2
"""
AUTH_FUNCTION_ROW = """
SELECT p.prosrc, p.prosecdef, coalesce(p.proconfig, '{}'), p.provolatile::text, p.prokind::text, l.lanname::text,
  o.rolname::text, o.rolsuper, pg_catalog.pg_get_function_arguments(p.oid), pg_catalog.pg_get_function_result(p.oid)
FROM pg_catalog.pg_proc p JOIN pg_catalog.pg_roles o ON o.oid = p.proowner
JOIN pg_catalog.pg_language l ON l.oid = p.prolang
WHERE p.oid = pg_catalog.to_regprocedure(%s)
"""
AUTH_SETTINGS = [sql.AUTH_FUNCTION_DEFINITION.setting]  # what harden_auth_function sets, and nothing else


@dataclass(frozen=True)
class Failure:
    problem: str
    fix: str = FIX


def _columns(rows: Sequence[tuple[object, ...]], width: int) -> list[list[object]]:
    """Rows as parameter arrays, one per column (unnest's input)."""
    return [[row[i] for row in rows] for i in range(width)]


def _login(login: bool) -> str:
    return "LOGIN" if login else "NOLOGIN"


def _role_failures(plan: access.AccessPlan, conn: psycopg.Connection[Any]) -> list[Failure]:
    """Every declared role's existence, LOGIN, CONNECTION LIMIT, attributes, the memberships it lacks
    (those beyond its own are excess_query's) and the role its sessions start as."""
    found = {row[0]: row[1:] for row in conn.execute(ROLE_ROWS, ([r.name for r in plan.roles],)).fetchall()}
    failures = []
    for role in plan.roles:
        if role.name not in found:
            failures.append(Failure(f"role {role.name} does not exist"))
            continue
        login, limit, privileged, member_of, settings = found[role.name]
        if (bool(login), int(limit)) != (role.login, role.connection_limit):
            failures.append(
                Failure(
                    f"role {role.name}: {_login(bool(login))}, CONNECTION LIMIT {limit} on the server; declared "
                    f"{_login(role.login)}, CONNECTION LIMIT {role.connection_limit}"
                )
            )
        if privileged:
            failures.append(Failure(f"role {role.name} has SUPERUSER, CREATEROLE, CREATEDB, REPLICATION or BYPASSRLS"))
        if set(role.member_of) - set(member_of):
            failures.append(
                Failure(
                    f"role {role.name} is a member of {', '.join(sorted(member_of)) or 'no role'}, declared "
                    f"{', '.join(sorted(role.member_of))}"
                )
            )
        if role.assume_role is not None and f"role={role.assume_role}" not in settings:
            failures.append(Failure(f"role {role.name} does not start as {role.assume_role} (ALTER ROLE ... SET role)"))
    return failures


def _lacking(plan: access.AccessPlan, db: access.Database, session: psycopg.Connection[Any]) -> list[Failure]:
    """What the plan grants in `db` and the server does not hold: each group's level on every table and
    sequence of its schemas, the database, schema and function privileges, the default privileges; and
    the migration tables' writes the plan revokes, where a write group still holds them."""
    wanted, exempt = [], []
    for group in db.groups:
        for schema in group.schemas:
            wanted += [(group.name, schema, "table", p) for p in access.TABLE_PRIVILEGES[group.level]]
            wanted += [(group.name, schema, "sequence", p) for p in access.SEQUENCE_PRIVILEGES[group.level]]
        # schema.table as the config names it: lower-case identifiers, as the catalog holds them.
        for revoke in plan.migration_revokes:
            if group.name in revoke.roles:
                exempt += [(group.name, revoke.table, p) for p in access.MIGRATION_TABLE_REVOKES]
    failures = []
    for grantee, kind, name, missing in session.execute(
        LACKING_ON_RELATIONS, (*_columns(wanted, 4), *_columns(exempt, 3))
    ).fetchall():
        failures.append(Failure(f"{db.name}: {grantee} lacks {', '.join(missing)} on {kind} {name}"))
    elsewhere = [
        (g.role, g.object_type, g.database if g.object_type == "database" else g.schema or "", p)
        for g in plan.grants
        if g.database == db.name and g.role != "public" and g.object_type in ("database", "schema", "function")
        for p in g.privileges
    ]
    for grantee, kind, name, missing in session.execute(LACKING_ELSEWHERE, _columns(elsewhere, 4)).fetchall():
        failures.append(Failure(f"{db.name}: {grantee} lacks {', '.join(missing)} on {kind} {name}"))
    defaults = [d for d in plan.default_privileges if d.database == db.name]
    rows = [
        (i, d.owner, d.schema, "r" if d.object_type == "table" else "S", d.role, ",".join(d.privileges))
        for i, d in enumerate(defaults)
    ]
    for (i,) in session.execute(LACKING_DEFAULTS, _columns(rows, 6)).fetchall():
        d = defaults[i]
        what = f"{d.object_type}s of {d.owner} in {d.schema}"
        failures.append(Failure(f"{db.name}: no default {', '.join(d.privileges)} on new {what} for {d.role}"))
    blocked = [(role, r.table) for r in plan.migration_revokes if r.database == db.name for role in r.roles]
    for role, table in session.execute(MIGRATION_WRITES, _columns(blocked, 2)).fetchall():
        failures.append(Failure(f"{db.name}: {role} may write migration table {table}"))
    return failures


def _recreate_auth_function(plan: access.AccessPlan, database: str) -> str:
    """The lookup function as defined, and who may run it."""
    grants = [g for g in plan.grants if g.database == database and g.object_type == "function"]
    return "\n".join([*sql.auth_function_statements(), *(s for g in grants for s in sql.grant_statements(g))])


def _auth_function_failures(plan: access.AccessPlan, database: str, session: psycopg.Connection[Any]) -> list[Failure]:
    """The lookup function PgBouncer's pooled logins depend on: present, as defined (body, arguments,
    result, language, volatility), owned by a superuser, SECURITY DEFINER, its search_path pinned and
    nothing else set. (Who may EXECUTE it: excess_query and _lacking.)"""
    function = sql.AUTH_FUNCTION_DEFINITION
    signature = function.signature
    row = session.execute(AUTH_FUNCTION_ROW, (signature,)).fetchone()
    if row is None:
        problem = f"{database}: the lookup function {signature} is missing (pooled logins fail: bouncer config error)"
        return [Failure(problem, _recreate_auth_function(plan, database))]
    body, definer, settings, volatility, kind, language, owner, owner_super, arguments, result = row
    failures = []
    checked = (
        ("its body", body == function.body),
        (f"arguments ({arguments})", arguments == function.arguments),
        (f"result ({result})", result == function.result),
        (f"language {language}", language == function.language),
        (f"volatility {volatility}", volatility == function.provolatile),
        (f"kind {kind}", kind == "f"),
    )
    differs = [what for what, same in checked if not same]
    if differs:
        problem = f"{database}: the lookup function {signature} differs from what the program renders: "
        failures.append(Failure(problem + ", ".join(differs), _recreate_auth_function(plan, database)))
    if not owner_super:
        problem = (
            f"{database}: the lookup function {signature} is owned by {owner}, not a superuser "
            "(it reads pg_authid as its owner)"
        )
        failures.append(Failure(problem, f"ALTER FUNCTION {signature} OWNER TO {sql.ident(SUPERUSER)};"))
    if not definer:
        problem = f"{database}: the lookup function {signature} is not SECURITY DEFINER"
        failures.append(Failure(problem, f"ALTER FUNCTION {signature} SECURITY DEFINER;"))
    if list(settings) != AUTH_SETTINGS:
        others = [s for s in settings if not s.startswith("search_path=")]
        reset = f"ALTER FUNCTION {signature} RESET ALL;\n" if others else ""
        problem = f"{database}: the lookup function {signature} has settings {list(settings)}, not {AUTH_SETTINGS}"
        failures.append(Failure(problem, reset + sql.harden_auth_function()))
    return failures


def check_grants(config: PlatformConfig, dsn: str) -> list[dict[str, str]]:
    """Against the plan: every declared role's attributes and memberships; what the plan grants and the
    server lacks (each group's level on every table and sequence of its schemas, database, schema and
    function privileges, default privileges, the migration-table revokes); everything the plan's roles
    and PUBLIC hold beyond it (render.sql.excess_query); the lookup function. Each failure with its
    fix: SQL where one statement removes it, else the re-apply."""
    plan = access.plan(config)
    failures: list[Failure] = []
    with psycopg.connect(dsn, autocommit=True) as conn:
        failures += _role_failures(plan, conn)
        failures += _excess(conn, sql.excess_query(plan, None, cluster=True))
    for db in plan.databases:
        with psycopg.connect(make_conninfo(dsn, dbname=db.name), autocommit=True) as session:
            failures += _lacking(plan, db, session)
            failures += _excess(session, sql.excess_query(plan, db.name, cluster=False))
            if plan.has_pgbouncer:
                failures += _auth_function_failures(plan, db.name, session)
    return [{"problem": f.problem, "fix": f.fix} for f in failures]


def _excess(session: psycopg.Connection[Any], query: str) -> list[Failure]:
    return [Failure(str(problem), str(fix)) for problem, fix in session.execute(query).fetchall()]
