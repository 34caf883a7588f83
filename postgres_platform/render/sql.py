"""SQL rendered from the access plan (pure, no pulumi).

Two uses: the statements pulumi-postgresql cannot declare (run by SqlApply on every up), and the whole
plan as an idempotent psql script (scripts/render_sql.py) for operators who review SQL or whose
server Pulumi cannot reach. Both read the same AccessPlan the Pulumi resources are built from.
"""

from __future__ import annotations

from collections.abc import Iterable
from typing import Literal

from postgres_platform.model.access import (
    MIGRATION_TABLE_REVOKES,
    AccessPlan,
    DefaultPrivilege,
    Grant,
    MigrationRevoke,
    OwnershipMove,
    Role,
    auth_function_body,
)
from postgres_platform.model.names import AUTH_FUNCTION, AUTH_ROLE, AUTH_SCHEMA, SUPERUSER


def ident(name: str) -> str:
    """Quote an identifier (config already restricts names to ^[a-z_][a-z0-9_]*$)."""
    return '"' + name.replace('"', '""') + '"'


def literal(value: str) -> str:
    return "'" + value.replace("'", "''") + "'"


AUTH_FUNCTION_SIGNATURE = f"{ident(AUTH_SCHEMA)}.{ident(AUTH_FUNCTION)}(text)"


def harden_auth_function() -> str:
    """Pin the lookup function's search_path (CVE-2025-12819 class); CREATE OR REPLACE resets it."""
    return f"ALTER FUNCTION {AUTH_FUNCTION_SIGNATURE} SET search_path = pg_catalog, pg_temp;"


def revoke_migration_writes(revokes: list[MigrationRevoke]) -> str:
    """Take write rights on migration tables from non-migrate apps, for the tables that exist now.

    Default privileges grant every new table to write apps, the migration tables too, so this runs on
    every `pulumi up`: a table a migration created since the last up is covered then.
    """
    if not revokes:
        return ""
    privileges = ", ".join(MIGRATION_TABLE_REVOKES)
    statements = []
    for revoke in revokes:
        roles = ", ".join(ident(r) for r in revoke.roles)
        statements.append(
            f"  IF pg_catalog.to_regclass({literal(revoke.table)}) IS NOT NULL THEN\n"
            f"    REVOKE {privileges} ON TABLE {_qualified(revoke.table)} FROM {roles};\n"
            f"  END IF;"
        )
    return "DO $revoke$\nBEGIN\n" + "\n".join(statements) + "\nEND\n$revoke$;"


def reapply_script(plan: AccessPlan, database: str) -> str:
    """What the SqlApply step runs in one database on every up (and render_script runs there too): the
    lookup function's search_path, the migration-table revokes, and every privilege beyond the plan
    revoked (revoke_excess), in one transaction (psycopg sends it as one simple query)."""
    revokes = revoke_migration_writes([r for r in plan.migration_revokes if r.database == database])
    steps = (harden_auth_function() if plan.pooler else "", revokes, revoke_excess(plan, database))
    return "\n".join(s for s in steps if s)


def reapply_check(plan: AccessPlan, database: str) -> str:
    """One read-only query: true when everything reapply_script establishes is in place (so a preview
    shows the step again when a privilege beyond the plan appeared since the last up)."""
    cluster = database == plan.databases[0].name
    conditions = [f"NOT EXISTS (\n{excess_query(plan, database, cluster=cluster, mode='revoke')}\n)"]
    if plan.pooler:
        conditions.append(
            f"coalesce((SELECT 'search_path=pg_catalog, pg_temp' = ANY(proconfig) FROM pg_catalog.pg_proc "
            f"WHERE oid = pg_catalog.to_regprocedure({literal(AUTH_FUNCTION_SIGNATURE)})), false)"
        )
    for revoke in plan.migration_revokes:
        if revoke.database != database:
            continue
        for role in revoke.roles:
            held = " OR ".join(
                f"pg_catalog.has_table_privilege({literal(role)}, {literal(revoke.table)}, {literal(p)})"
                for p in MIGRATION_TABLE_REVOKES
            )
            conditions.append(f"(pg_catalog.to_regclass({literal(revoke.table)}) IS NULL OR NOT ({held}))")
    return "SELECT " + "\n  AND ".join(conditions)


def retire_role(role: str, owner: str, superuser: bool = True) -> str:
    """Before a role is dropped: what it owns in this database goes to `owner`; its grants go away.

    Skipped when the role is already gone (a retried delete). An admin that is no superuser (a managed
    server) must be a member of both roles first.
    """
    join = "" if superuser else f"    GRANT {ident(role)}, {ident(owner)} TO CURRENT_USER;\n"
    return (
        f"DO $retire$\nBEGIN\n  IF EXISTS (SELECT 1 FROM pg_catalog.pg_roles WHERE rolname = {literal(role)}) THEN\n"
        f"{join}    REASSIGN OWNED BY {ident(role)} TO {ident(owner)};\n    DROP OWNED BY {ident(role)};\n  END IF;\n"
        f"END\n$retire$;"
    )


# An ALTER ... OWNER waits for every lock on its table and blocks all queries behind it meanwhile: wait
# this long at most, leave that object for the next run, and say so.
OWNERSHIP_LOCK_TIMEOUT = "5s"


def _array(values: tuple[str, ...]) -> str:
    return f"ARRAY[{', '.join(literal(v) for v in values)}]::pg_catalog.text[]"


def ownership_candidates(move: OwnershipMove) -> str:
    """Objects still to move (kind, identity): the app schemas and their tables, partitioned tables,
    views, materialized views, free-standing sequences and functions not yet owned by the owner role,
    less an extension's members and the kept ones. (A serial's sequence moves with its table.)"""
    schemas, keep = _array(move.schemas), _array(move.keep)
    extension_member = (
        "EXISTS (SELECT 1 FROM pg_catalog.pg_depend d WHERE d.classid = {cls}::pg_catalog.regclass "
        "AND d.objid = {oid} AND d.deptype = 'e')"
    )
    return f"""SELECT o.kind, o.identity FROM (
  SELECT 'SCHEMA' AS kind, pg_catalog.quote_ident(n.nspname) AS identity, n.nspowner AS owner, n.nspname AS path,
    false AS extension  -- an extension's schema: left out below, with everything in it
  FROM pg_catalog.pg_namespace n WHERE n.nspname = ANY ({schemas})
  UNION ALL
  SELECT CASE c.relkind WHEN 'v' THEN 'VIEW' WHEN 'm' THEN 'MATERIALIZED VIEW' WHEN 'S' THEN 'SEQUENCE'
    ELSE 'TABLE' END, pg_catalog.quote_ident(n.nspname) || '.' || pg_catalog.quote_ident(c.relname), c.relowner,
    n.nspname || '.' || c.relname, {extension_member.format(cls="'pg_catalog.pg_class'", oid="c.oid")}
  FROM pg_catalog.pg_class c JOIN pg_catalog.pg_namespace n ON n.oid = c.relnamespace
  WHERE n.nspname = ANY ({schemas}) AND c.relkind IN ('r', 'p', 'v', 'm', 'S')
    AND NOT (c.relkind = 'S' AND EXISTS (SELECT 1 FROM pg_catalog.pg_depend d
      WHERE d.classid = 'pg_catalog.pg_class'::pg_catalog.regclass AND d.objid = c.oid
        AND d.refclassid = 'pg_catalog.pg_class'::pg_catalog.regclass AND d.deptype IN ('a', 'i')))
  UNION ALL
  SELECT CASE p.prokind WHEN 'p' THEN 'PROCEDURE' WHEN 'a' THEN 'AGGREGATE' ELSE 'FUNCTION' END,
    pg_catalog.quote_ident(n.nspname) || '.' || pg_catalog.quote_ident(p.proname) || '(' ||
      pg_catalog.pg_get_function_identity_arguments(p.oid) || ')', p.proowner,
    n.nspname || '.' || p.proname, {extension_member.format(cls="'pg_catalog.pg_proc'", oid="p.oid")}
  FROM pg_catalog.pg_proc p JOIN pg_catalog.pg_namespace n ON n.oid = p.pronamespace
  WHERE n.nspname = ANY ({schemas})
) o
WHERE o.owner <> {literal(move.owner)}::pg_catalog.regrole AND NOT o.extension
  AND (o.kind = 'SCHEMA' OR NOT o.path = ANY ({keep}))
  AND NOT EXISTS (SELECT 1 FROM pg_catalog.pg_depend d JOIN pg_catalog.pg_namespace e ON e.oid = d.objid
    WHERE d.classid = 'pg_catalog.pg_namespace'::pg_catalog.regclass AND d.deptype = 'e'
      AND e.nspname = pg_catalog.split_part(o.path, '.', 1))
ORDER BY o.kind <> 'SCHEMA', o.identity"""


def ownership_script(move: OwnershipMove, superuser: bool = True) -> str:
    """Move the app schemas' objects to the owner role, one short transaction per object.

    One statement (a DO block that commits per object): runs outside a transaction block, in psql or
    the SqlApply step. Idempotent: what is moved is no candidate any more. Objects whose lock is not
    granted within OWNERSHIP_LOCK_TIMEOUT are left and named in the error; run it again.
    """
    join = "" if superuser else f"  GRANT {ident(move.owner)} TO CURRENT_USER;\n  COMMIT;\n"
    candidates = ownership_candidates(move).replace("\n", "\n    ")
    return f"""DO $ownership$
DECLARE
  r record;
  busy pg_catalog.text[] := '{{}}';
BEGIN
{join}  PERFORM pg_catalog.set_config('lock_timeout', {literal(OWNERSHIP_LOCK_TIMEOUT)}, false);
  FOR r IN
    {candidates}
  LOOP
    BEGIN
      EXECUTE pg_catalog.format('ALTER %s %s OWNER TO %I', r.kind, r.identity, {literal(move.owner)});
    EXCEPTION WHEN lock_not_available THEN
      busy := busy || r.identity;
    END;
    COMMIT;
  END LOOP;
  PERFORM pg_catalog.set_config('lock_timeout', '0', false);
  IF pg_catalog.cardinality(busy) > 0 THEN
    RAISE EXCEPTION 'ownership of % not moved to {move.owner}: busy (no lock in {OWNERSHIP_LOCK_TIMEOUT}), run again',
      pg_catalog.array_to_string(busy, ', ');
  END IF;
END
$ownership$;"""


def ownership_check(move: OwnershipMove) -> str:
    """True when nothing is left to move."""
    return f"SELECT NOT EXISTS (\n{ownership_candidates(move)}\n)"


def _qualified(table: str) -> str:
    schema, name = table.split(".", 1)
    return f"{ident(schema)}.{ident(name)}"


def set_password(role: str, verifier: str) -> str:
    """Set a role's password from its SCRAM verifier: stored as is, so no plaintext reaches the server's logs."""
    return f"ALTER ROLE {ident(role)} WITH PASSWORD {literal(verifier)};\n"


def password_variable(role: str) -> str:
    """The psql variable that carries a role's password into the script (never the script itself)."""
    return f"{role}_password"


def _grantee(role: str) -> str:
    return "PUBLIC" if role == "public" else ident(role)


_ALL = {"table": "ALL TABLES IN SCHEMA", "sequence": "ALL SEQUENCES IN SCHEMA", "function": "ALL FUNCTIONS IN SCHEMA"}
_DEFAULT_KIND = {"table": "TABLES", "sequence": "SEQUENCES"}


def role_statements(role: Role, superuser: bool = True) -> list[str]:
    """Create if missing, then set every attribute (so a second run changes nothing).

    Only a superuser may name SUPERUSER, REPLICATION or BYPASSRLS in ALTER ROLE, even to deny them; a
    CREATEROLE admin's roles never have them (CREATE ROLE defaults to NO).
    """
    name = ident(role.name)
    login = "LOGIN" if role.login else "NOLOGIN"
    only_superuser = " NOSUPERUSER NOREPLICATION NOBYPASSRLS" if superuser else ""
    statements = [
        f"SELECT 'CREATE ROLE {name}' WHERE NOT EXISTS "
        f"(SELECT 1 FROM pg_catalog.pg_roles WHERE rolname = {literal(role.name)})\\gexec",
        f"ALTER ROLE {name} WITH {login}{only_superuser} NOCREATEDB NOCREATEROLE INHERIT "
        f"CONNECTION LIMIT {role.connection_limit};",
    ]
    if role.login:
        statements.append(f"ALTER ROLE {name} WITH PASSWORD :'{password_variable(role.name)}';")
    for setting, value in (
        ("statement_timeout", role.statement_timeout_ms),
        ("idle_in_transaction_session_timeout", role.idle_in_transaction_timeout_ms),
        ("role", None if role.assume_role is None else ident(role.assume_role)),
    ):
        statements.append(
            f"ALTER ROLE {name} SET {setting} = {value};"
            if value is not None
            else f"ALTER ROLE {name} RESET {setting};"
        )
    return statements


def membership_statements(role: Role) -> list[str]:
    """Exactly the role's memberships, as the provider's Role.roles: grant the listed, revoke the rest."""
    listed = ", ".join(literal(group) for group in role.member_of)
    revoke_others = (
        f"SELECT pg_catalog.format('REVOKE %I FROM %I', g.rolname, m.rolname) FROM pg_catalog.pg_auth_members a "
        f"JOIN pg_catalog.pg_roles g ON g.oid = a.roleid JOIN pg_catalog.pg_roles m ON m.oid = a.member "
        f"WHERE m.rolname = {literal(role.name)} AND g.rolname <> ALL (ARRAY[{listed}]::pg_catalog.name[])\\gexec"
    )
    return [*(f"GRANT {ident(group)} TO {ident(role.name)};" for group in role.member_of), revoke_others]


def grant_statements(grant: Grant) -> list[str]:
    """Exactly these privileges, as the provider's Grant does: revoke all, then grant the set."""
    if grant.object_type == "database":
        target = f"DATABASE {ident(grant.database)}"
    elif grant.object_type == "schema":
        target = f"SCHEMA {ident(grant.schema or '')}"
    elif grant.objects:
        kind = grant.object_type.upper()
        target = f"{kind} " + ", ".join(f"{ident(grant.schema or '')}.{ident(o)}" for o in grant.objects)
    else:
        target = f"{_ALL[grant.object_type]} {ident(grant.schema or '')}"
    statements = [f"REVOKE ALL ON {target} FROM {_grantee(grant.role)};"]
    if grant.privileges:
        statements.append(f"GRANT {', '.join(grant.privileges)} ON {target} TO {_grantee(grant.role)};")
    return statements


def default_privilege_statements(default: DefaultPrivilege) -> list[str]:
    scope = f"ALTER DEFAULT PRIVILEGES FOR ROLE {ident(default.owner)} IN SCHEMA {ident(default.schema)}"
    kind = _DEFAULT_KIND[default.object_type]
    return [
        f"{scope} REVOKE ALL ON {kind} FROM {ident(default.role)};",
        f"{scope} GRANT {', '.join(default.privileges)} ON {kind} TO {ident(default.role)};",
    ]


AUTH_FUNCTION_ARGUMENTS = "p_usename text"  # as pg_get_function_arguments shows them
AUTH_FUNCTION_RESULT = "TABLE(usename text, passwd text)"  # as pg_get_function_result shows it


def auth_function_statements() -> list[str]:
    """The lookup function as rendered, owned by the superuser. A function of that signature that CREATE
    OR REPLACE cannot replace (another result, argument name or kind) is dropped first."""
    incompatible = (
        f"SELECT 1 FROM pg_catalog.pg_proc WHERE oid = pg_catalog.to_regprocedure({literal(AUTH_FUNCTION_SIGNATURE)}) "
        f"AND (prokind <> 'f' OR pg_catalog.pg_get_function_result(oid) <> {literal(AUTH_FUNCTION_RESULT)} "
        f"OR pg_catalog.pg_get_function_arguments(oid) <> {literal(AUTH_FUNCTION_ARGUMENTS)})"
    )
    return [
        f"CREATE SCHEMA IF NOT EXISTS {ident(AUTH_SCHEMA)} AUTHORIZATION {ident(SUPERUSER)};",
        f"ALTER SCHEMA {ident(AUTH_SCHEMA)} OWNER TO {ident(SUPERUSER)};",
        f"DO $replaceable$ BEGIN IF EXISTS ({incompatible}) THEN DROP ROUTINE {AUTH_FUNCTION_SIGNATURE}; END IF; "
        "END $replaceable$;",
        f"CREATE OR REPLACE FUNCTION {AUTH_FUNCTION_SIGNATURE.replace('(text)', f'({AUTH_FUNCTION_ARGUMENTS})')}\n"
        f"RETURNS {AUTH_FUNCTION_RESULT}\nLANGUAGE sql STABLE SECURITY DEFINER\n"
        f"AS $function${auth_function_body()}$function$;",
        f"ALTER FUNCTION {AUTH_FUNCTION_SIGNATURE} OWNER TO {ident(SUPERUSER)};",
        harden_auth_function(),
    ]


def render_script(plan: AccessPlan) -> str:
    """The whole plan as a psql script for the plan's admin; passwords arrive as -v <role>_password=...

    Each part runs in one transaction, as the provider's revoke-then-grant does: a live app never sees
    the moment between a REVOKE ALL and its GRANT. (CREATE DATABASE cannot run in one: it runs alone;
    nor can the ownership move, which commits per object.) On an adopted server databases and schemas
    must exist: the script stops if one does not, and never changes their owners but by the move.
    """
    out = [
        "-- postgres-platform: the access plan as SQL. Idempotent: run it again to converge.",
        f"-- psql -v ON_ERROR_STOP=1 {' '.join(f'-v {password_variable(r.name)}=...' for r in plan.logins)} -f -",
        "-- Give each password variable the role's SCRAM verifier (README), or the password itself.",
        f"-- Run as {plan.admin}{'' if plan.admin_superuser else ' (CREATEROLE, not a superuser)'}.",
        "\\set ON_ERROR_STOP 1",
        "SET client_min_messages = warning;",
        # Never queue behind an open migration (a waiting ALTER blocks every query behind it): the
        # script stops with "canceling statement due to lock timeout"; run it again once that ends.
        "SET lock_timeout = '5s';",
        "BEGIN;",
    ]
    for role in plan.roles:
        out += role_statements(role, plan.admin_superuser)
    for role in plan.roles:
        out += membership_statements(role)
    if not plan.admin_superuser:
        # Default privileges FOR ROLE <owner> need membership in it (the provider grants it for the call).
        out += [f"GRANT {ident(role.name)} TO CURRENT_USER;" for role in plan.owners]
    out.append("COMMIT;")
    for db in plan.databases if not plan.adopted else ():
        out.append(
            f"SELECT 'CREATE DATABASE {ident(db.name)} OWNER {ident(db.owner)}' WHERE NOT EXISTS "
            f"(SELECT 1 FROM pg_catalog.pg_database WHERE datname = {literal(db.name)})\\gexec"
        )
        out.append(f"ALTER DATABASE {ident(db.name)} OWNER TO {ident(db.owner)};")
    for db in plan.databases:
        out += ["", f"\\connect {ident(db.name)}", "SET client_min_messages = warning;", "BEGIN;"]
        for schema in db.schemas:
            if plan.adopted:
                out.append(
                    f"DO $adopt$ BEGIN IF pg_catalog.to_regnamespace({literal(schema)}) IS NULL THEN RAISE EXCEPTION "
                    f"'schema {schema} does not exist in {db.name}: an adopted server''s schemas are never created'; "
                    "END IF; END $adopt$;"
                )
            else:
                out.append(f"CREATE SCHEMA IF NOT EXISTS {ident(schema)} AUTHORIZATION {ident(db.owner)};")
                out.append(f"ALTER SCHEMA {ident(schema)} OWNER TO {ident(db.owner)};")
        if plan.pooler:
            out += auth_function_statements()
        for grant in plan.grants:
            if grant.database == db.name:
                out += grant_statements(grant)
        for default in plan.default_privileges:
            if default.database == db.name:
                out += default_privilege_statements(default)
        revoke = revoke_migration_writes([r for r in plan.migration_revokes if r.database == db.name])
        if revoke:
            out.append(revoke)
        # What the roles hold beyond the plan, in the grants' transaction: the re-apply step's revokes,
        # then the ones it may not run (an option to pass a privilege on, another grantor's grant).
        out.append(revoke_excess(plan, db.name))
        out.append(revoke_excess(plan, db.name, mode="rest"))
        out.append("COMMIT;")
        for move in plan.ownership:
            if move.database == db.name:
                out.append(ownership_script(move, plan.admin_superuser))
    return "\n".join(out) + "\n"


# --- beyond the plan ---------------------------------------------------------------------------------
# What the roles the plan manages (owners, groups, logins) and PUBLIC hold that the plan does not give
# them, read from the catalogs' ACLs: one query per database, each row a problem and the SQL that takes
# it away. The same query is the check (live.check_grants), the re-apply step's condition and, in a DO
# block, its revokes: they cannot disagree. No fix names a privilege the plan gives, so run after the
# plan's grants, in their transaction, the fixes take nothing a live app uses.

# "revoke": the fixes that are a plain REVOKE (all the SqlApply step may run: policy sql-steps); "rest":
# the others (the option to pass a planned privilege on; what another grantor gave, revoked as that
# grantor); "all": both, as the check reports them.
ExcessMode = Literal["revoke", "rest", "all"]
BOOTSTRAP_SUPERUSER_OID = 10  # PostgreSQL 16+ records a superuser's role grants as this role's
SHOWN_OBJECTS = 5  # how many objects a problem names (its fix names them all)
_USER_SCHEMA = "n.nspname <> 'information_schema' AND pg_catalog.left(n.nspname, 3) <> 'pg_'"
_WHY = {
    "owner": "an owner role holds only what it owns",
    "login": "a login holds nothing directly, only its memberships",
    "auth": "the auth role may only connect and run the lookup function",
    "public": "every role holds what PUBLIC holds",
}
# An ACL item of an object (each source below yields these columns).
_ACL = "keyword, schema, name, object, grantee, grantee_sql, why, grantor, chained, privilege, grantable"
_GRANTEE = "g.grantee, g.grantee_sql, g.why, a.grantor"
_NOUN = (
    "CASE keyword WHEN 'ROUTINE' THEN 'function' WHEN 'TABLE' THEN 'table' WHEN 'SEQUENCE' THEN 'sequence' "
    "WHEN 'SCHEMA' THEN 'schema' ELSE 'database' END"
)
_DEFAULT_OBJECTS = (
    "CASE objtype WHEN 'r' THEN 'TABLES' WHEN 'S' THEN 'SEQUENCES' WHEN 'f' THEN 'FUNCTIONS' WHEN 'T' THEN 'TYPES' "
    "WHEN 'n' THEN 'SCHEMAS' ELSE 'LARGE OBJECTS' END"
)
_EXTENSION_MEMBER = (
    "EXISTS (SELECT 1 FROM pg_catalog.pg_depend e WHERE e.classid = 'pg_catalog.pg_class'::pg_catalog.regclass "
    "AND e.objid = c.oid AND e.deptype = 'e')"
)
_PRIVILEGES = "pg_catalog.array_to_string(privileges, ', ')"
_NO_PROBLEM = "NULL::pg_catalog.text"


def _rows(columns: tuple[str, ...], rows: Iterable[tuple[str | None, ...]]) -> str:
    """A literal relation of text columns (no rows: an empty one)."""
    values = ", ".join("(" + ", ".join("NULL" if v is None else literal(v) for v in row) + ")" for row in rows)
    if not values:
        return "SELECT " + ", ".join(f"NULL::pg_catalog.text AS {c}" for c in columns) + " WHERE false"
    return f"SELECT * FROM (VALUES {values}) AS v ({', '.join(columns)})"


def _texts(values: Iterable[str]) -> str:
    return f"ARRAY[{', '.join(literal(v) for v in values)}]::pg_catalog.text[]"


def _managed(plan: AccessPlan, why: bool) -> list[tuple[str | None, ...]]:
    """(role, kind, why it may hold no more: only with `why`) for every role the plan manages."""
    levels = {g.name: g.level for db in plan.databases for g in db.groups}
    rows = [(r.name, "owner", _WHY["owner"]) for r in plan.owners]
    rows += [(r.name, "group", f"its level is {levels[r.name]}") for r in plan.groups]
    for login in plan.logins:
        kind = "auth" if login.name == AUTH_ROLE else "login"
        rows.append((login.name, kind, _WHY[kind]))
    return [(name, kind, reason if why else None) for name, kind, reason in rows]


def _planned(plan: AccessPlan, database: str | None) -> list[tuple[str | None, ...]]:
    """(kind, database, schema, object, grantee, privilege) the plan grants: every database's database
    privileges, the others in `database` only."""
    return [
        (g.object_type, g.database, g.schema, obj, "PUBLIC" if g.role == "public" else g.role, privilege)
        for g in plan.grants
        if g.object_type == "database" or g.database == database
        for privilege in g.privileges
        for obj in g.objects or (None,)
    ]


def _listed(array: str) -> str:
    """SQL: an array's first elements as a list, and how many more."""
    n = SHOWN_OBJECTS
    return (
        f"CASE WHEN pg_catalog.cardinality({array}) > {n} THEN pg_catalog.array_to_string({array}[1:{n}], ', ') || "
        f"pg_catalog.format(' and %s more', pg_catalog.cardinality({array}) - {n}) "
        f"ELSE pg_catalog.array_to_string({array}, ', ') END"
    )


def _fix(mode: ExcessMode, privileges: str, target: str) -> str:
    """SQL: a unit's REVOKE `privileges` ON `target` FROM its grantee; outside mode "revoke" also the
    option to pass a planned privilege on, and what another grantor gave (revoked as that grantor)."""
    revoke = f"pg_catalog.format('%s ON %s FROM %s CASCADE;', {privileges}, {target}, grantee_sql)"
    if mode == "revoke":
        return f"'REVOKE ' || {revoke}"
    return (
        "CASE WHEN chained THEN pg_catalog.format('SET ROLE %I; ', pg_catalog.pg_get_userbyid(grantor)) ELSE '' END\n"
        "    || CASE WHEN action = 'option' THEN 'REVOKE GRANT OPTION FOR ' ELSE 'REVOKE ' END\n"
        f"    || {revoke}\n    || CASE WHEN chained THEN ' RESET ROLE;' ELSE '' END"
    )


def _problem(mode: ExcessMode, where: str, privileges: str, what: str) -> str:
    """SQL: "<where><grantee> holds <privileges> on <what>, beyond the plan (<why>)"."""
    if mode == "revoke":
        return _NO_PROBLEM
    return (
        f"pg_catalog.format('%s%s holds %s%s on %s%s, beyond the plan (%s)', {where}, grantee, {privileges},\n"
        f"    CASE WHEN action = 'option' THEN ' WITH GRANT OPTION' ELSE '' END, {what},\n"
        "    CASE WHEN chained THEN ' (given by ' || pg_catalog.pg_get_userbyid(grantor) || ')' ELSE '' END, why)"
    )


def _units(name: str, source: str, match: str, mode: ExcessMode) -> str:
    """CTE: the ACL items of `source` beyond the plan (to revoke) or planned but passable on (option),
    per grantee, grantor and action their privileges, and the objects with the same ones together."""
    where = {
        "revoke": "NOT chained AND NOT planned",
        "rest": "chained OR (planned AND grantable)",
        "all": "chained OR NOT planned OR grantable",
    }[mode]
    return (
        f"{name} AS (\n  SELECT keyword, schema, grantee, grantee_sql, why, grantor, chained, action, privileges, "
        "pg_catalog.array_agg(object ORDER BY object) AS objects\n"
        "  FROM (SELECT keyword, schema, object, grantee, grantee_sql, why, grantor, chained, action,\n"
        "      pg_catalog.array_agg(privilege ORDER BY privilege) AS privileges\n"
        "    FROM (SELECT *, CASE WHEN chained OR NOT planned THEN 'revoke' ELSE 'option' END AS action\n"
        f"      FROM (SELECT s.*, EXISTS (SELECT 1 FROM planned p WHERE {match}) AS planned\n"
        f"        FROM ({source}) AS s ({_ACL})) x\n"
        f"      WHERE {where}) u\n"
        "    GROUP BY 1, 2, 3, 4, 5, 6, 7, 8, 9) o\n"
        "  GROUP BY 1, 2, 3, 4, 5, 6, 7, 8, 9)"
    )


def _object_units(name: str, source: str, match: str, mode: ExcessMode, where: str) -> tuple[str, str]:
    """(CTE, SELECT) of the problems and fixes for the ACL items of `source`."""
    target = "keyword || ' ' || pg_catalog.array_to_string(objects, ', ')"
    what = f"{_NOUN} || CASE WHEN pg_catalog.cardinality(objects) > 1 THEN 's ' ELSE ' ' END || {_listed('objects')}"
    select = f"SELECT {_problem(mode, where, _PRIVILEGES, what)},\n  {_fix(mode, _PRIVILEGES, target)}\nFROM {name}"
    return _units(name, source, match, mode), select


def _relations(public: str) -> str:
    """ACL items of tables, views and sequences (PUBLIC's in `public` schemas, an extension's objects aside)."""
    return (
        "SELECT CASE WHEN c.relkind = 'S' THEN 'SEQUENCE' ELSE 'TABLE' END, n.nspname::pg_catalog.text, "
        "c.relname::pg_catalog.text,\n"
        "          pg_catalog.quote_ident(n.nspname) || '.' || pg_catalog.quote_ident(c.relname),\n"
        f"          {_GRANTEE}, a.grantor <> c.relowner, a.privilege_type, a.is_grantable\n"
        "        FROM pg_catalog.pg_class c JOIN pg_catalog.pg_namespace n ON n.oid = c.relnamespace\n"
        "        CROSS JOIN LATERAL pg_catalog.aclexplode(c.relacl) a JOIN grantee g ON g.oid = a.grantee\n"
        f"        WHERE c.relacl IS NOT NULL AND c.relkind IN ('r', 'p', 'v', 'm', 'f', 'S') AND {_USER_SCHEMA}\n"
        "          AND a.grantee <> c.relowner\n"
        f"          AND (a.grantee <> 0 OR (n.nspname = ANY ({public}) AND NOT {_EXTENSION_MEMBER}))"
    )


def _schemas(public: str) -> str:
    return (
        "SELECT 'SCHEMA', NULL::pg_catalog.text, n.nspname::pg_catalog.text, pg_catalog.quote_ident(n.nspname),\n"
        f"          {_GRANTEE}, a.grantor <> n.nspowner, a.privilege_type, a.is_grantable\n"
        "        FROM pg_catalog.pg_namespace n\n"
        "        CROSS JOIN LATERAL pg_catalog.aclexplode(COALESCE(n.nspacl, pg_catalog.acldefault('n', n.nspowner)))\n"
        "          AS a JOIN grantee g ON g.oid = a.grantee\n"
        f"        WHERE {_USER_SCHEMA} AND a.grantee <> n.nspowner AND (a.grantee <> 0 OR n.nspname = ANY ({public}))"
    )


def _functions(auth: str) -> str:
    """ACL items of functions: in the lookup function's schema everyone's, elsewhere only a login's
    (EXECUTE is PUBLIC's by default, and a group's there is the apps' own design)."""
    return (
        "SELECT 'ROUTINE', n.nspname::pg_catalog.text, p.proname::pg_catalog.text,\n"
        "          pg_catalog.quote_ident(n.nspname) || '.' || pg_catalog.quote_ident(p.proname) || '(' || "
        "pg_catalog.pg_get_function_identity_arguments(p.oid) || ')',\n"
        f"          {_GRANTEE}, a.grantor <> p.proowner, a.privilege_type, a.is_grantable\n"
        "        FROM pg_catalog.pg_proc p JOIN pg_catalog.pg_namespace n ON n.oid = p.pronamespace\n"
        "        CROSS JOIN LATERAL pg_catalog.aclexplode(COALESCE(p.proacl, pg_catalog.acldefault('f', p.proowner)))\n"
        "          AS a JOIN grantee g ON g.oid = a.grantee\n"
        f"        WHERE {_USER_SCHEMA} AND a.grantee <> p.proowner\n"
        f"          AND (p.proacl IS NOT NULL OR n.nspname = ANY ({auth}))\n"
        f"          AND (n.nspname = ANY ({auth}) OR g.kind IN ('login', 'auth'))"
    )


def _databases(public: str) -> str:
    return (
        "SELECT 'DATABASE', NULL::pg_catalog.text, d.datname::pg_catalog.text, pg_catalog.quote_ident(d.datname),\n"
        f"          {_GRANTEE}, a.grantor <> d.datdba, a.privilege_type, a.is_grantable\n"
        "        FROM pg_catalog.pg_database d\n"
        "        CROSS JOIN LATERAL pg_catalog.aclexplode(COALESCE(d.datacl, pg_catalog.acldefault('d', d.datdba))) a\n"
        "        JOIN grantee g ON g.oid = a.grantee\n"
        f"        WHERE a.grantee <> d.datdba AND (a.grantee <> 0 OR d.datname = ANY ({public}))"
    )


def _columns(mode: ExcessMode, public: str, where: str) -> tuple[str, str]:
    """Column privileges: the plan gives none (and a REVOKE on a table takes its columns' along)."""
    chained = {"revoke": "NOT chained", "rest": "chained", "all": "true"}[mode]
    cte = (
        "column_units AS (\n  SELECT object, grantee, grantee_sql, why, grantor, chained, 'revoke'::pg_catalog.text "
        "AS action, privilege,\n    pg_catalog.array_agg(col ORDER BY attnum) AS columns\n"
        "  FROM (SELECT pg_catalog.quote_ident(n.nspname) || '.' || pg_catalog.quote_ident(c.relname) AS object,\n"
        f"      {_GRANTEE}, a.grantor <> c.relowner AS chained, a.privilege_type AS privilege,\n"
        "      pg_catalog.quote_ident(att.attname) AS col, att.attnum\n"
        "    FROM pg_catalog.pg_attribute att JOIN pg_catalog.pg_class c ON c.oid = att.attrelid\n"
        "    JOIN pg_catalog.pg_namespace n ON n.oid = c.relnamespace\n"
        "    CROSS JOIN LATERAL pg_catalog.aclexplode(att.attacl) a JOIN grantee g ON g.oid = a.grantee\n"
        f"    WHERE att.attacl IS NOT NULL AND att.attnum > 0 AND NOT att.attisdropped AND {_USER_SCHEMA}\n"
        "      AND a.grantee <> c.relowner\n"
        f"      AND (a.grantee <> 0 OR (n.nspname = ANY ({public}) AND NOT {_EXTENSION_MEMBER}))) x\n"
        f"  WHERE {chained}\n  GROUP BY 1, 2, 3, 4, 5, 6, 7, 8)"
    )
    privileges = "privilege || ' (' || pg_catalog.array_to_string(columns, ', ') || ')'"
    what = (
        "'column' || CASE WHEN pg_catalog.cardinality(columns) > 1 THEN 's ' ELSE ' ' END || "
        "pg_catalog.array_to_string(columns, ', ') || ' of ' || object"
    )
    fix = _fix(mode, privileges, "'TABLE ' || object")
    return cte, f"SELECT {_problem(mode, where, 'privilege', what)},\n  {fix}\nFROM column_units"


def _defaults(plan: AccessPlan, database: str, mode: ExcessMode, where: str) -> tuple[str, str]:
    """Default privileges: the plan's (owner or creator, schema, tables or sequences, group) and no others;
    of functions and types only a login's are beyond it (as for the objects)."""
    planned = [
        (d.owner, d.schema, "r" if d.object_type == "table" else "S", d.role, privilege)
        for d in plan.default_privileges
        if d.database == database
        for privilege in d.privileges
    ]
    units = {"revoke": "NOT planned", "rest": "planned AND grantable", "all": "NOT planned OR grantable"}[mode]
    cte = (
        f"planned_default AS ({_rows(('creator', 'schema', 'objtype', 'grantee', 'privilege'), planned)}),\n"
        "default_units AS (\n  SELECT creator, schema, objtype, grantee, grantee_sql, why, action,\n"
        "    pg_catalog.array_agg(privilege ORDER BY privilege) AS privileges\n"
        "  FROM (SELECT *, CASE WHEN planned THEN 'option' ELSE 'revoke' END AS action\n"
        "    FROM (SELECT pg_catalog.pg_get_userbyid(d.defaclrole)::pg_catalog.text AS creator,\n"
        "        n.nspname::pg_catalog.text AS schema, d.defaclobjtype::pg_catalog.text AS objtype, g.grantee,\n"
        "        g.grantee_sql, g.why, a.privilege_type AS privilege, a.is_grantable AS grantable,\n"
        "        EXISTS (SELECT 1 FROM planned_default p WHERE p.creator = pg_catalog.pg_get_userbyid(d.defaclrole)\n"
        "          AND p.schema = n.nspname AND p.objtype = d.defaclobjtype::pg_catalog.text\n"
        "          AND p.grantee = g.grantee AND p.privilege = a.privilege_type) AS planned\n"
        "      FROM pg_catalog.pg_default_acl d LEFT JOIN pg_catalog.pg_namespace n ON n.oid = d.defaclnamespace\n"
        "      CROSS JOIN LATERAL pg_catalog.aclexplode(d.defaclacl) a JOIN grantee g ON g.oid = a.grantee\n"
        "      WHERE a.grantee <> d.defaclrole\n"
        "        AND (d.defaclobjtype IN ('r', 'S', 'n') OR g.kind IN ('login', 'auth'))\n"
        f"        AND (a.grantee <> 0 OR {'false' if plan.adopted else 'true'})) x\n"
        f"    WHERE {units}) u\n  GROUP BY 1, 2, 3, 4, 5, 6, 7)"
    )
    if mode == "revoke":
        problem, revoke = _NO_PROBLEM, "'REVOKE '"
    else:
        problem = (
            f"pg_catalog.format('%s%s gets %s%s on new %s of %s%s, beyond the plan (%s)', {where}, grantee,\n"
            f"    {_PRIVILEGES}, CASE WHEN action = 'option' THEN ' WITH GRANT OPTION' ELSE '' END,\n"
            f"    pg_catalog.lower({_DEFAULT_OBJECTS}), creator,\n"
            "    CASE WHEN schema IS NULL THEN '' ELSE ' in ' || schema END, why)"
        )
        revoke = "CASE WHEN action = 'option' THEN 'REVOKE GRANT OPTION FOR ' ELSE 'REVOKE ' END"
    select = (
        f"SELECT {problem},\n"
        "  pg_catalog.format('ALTER DEFAULT PRIVILEGES FOR ROLE %I', creator)\n"
        "    || CASE WHEN schema IS NULL THEN '' ELSE pg_catalog.format(' IN SCHEMA %I', schema) END || ' '\n"
        f"    || {revoke}\n"
        f"    || pg_catalog.format('%s ON %s FROM %s;', {_PRIVILEGES}, {_DEFAULT_OBJECTS}, grantee_sql)\n"
        "FROM default_units"
    )
    return cte, select


def _memberships(plan: AccessPlan, mode: ExcessMode) -> tuple[str, str]:
    """A managed role's memberships beyond its own; anyone's in an owner role (DDL) or a login (acting as
    the app); the option to hand a managed role on. A role from elsewhere in a group is the business of
    whoever manages it (README: GRANT <db>_read TO grafana_ro); the plan's admin is left as it is."""
    planned = [(group, role.name) for role in plan.roles for group in role.member_of]
    cte = f"planned_member AS ({_rows(('role', 'member'), planned)})"
    given_by = f"m.grantor <> {BOOTSTRAP_SUPERUSER_OID}"
    problem = (
        _NO_PROBLEM
        if mode == "revoke"
        else "pg_catalog.format('role %s is a member of %s%s%s, beyond the plan', m.member, m.role,\n"
        "    CASE WHEN p.role IS NULL THEN '' ELSE ' WITH ADMIN OPTION' END,\n"
        f"    CASE WHEN {given_by} THEN ' (given by ' || pg_catalog.pg_get_userbyid(m.grantor) || ')' ELSE '' END)"
    )
    owners_and_logins = _texts([r.name for r in (*plan.owners, *plan.logins)])
    select = (
        f"SELECT {problem},\n"
        "  'REVOKE ' || CASE WHEN p.role IS NULL THEN '' ELSE 'ADMIN OPTION FOR ' END\n"
        "    || pg_catalog.format('%I FROM %I', m.role, m.member)\n"
        f"    || CASE WHEN {given_by} THEN pg_catalog.format(' GRANTED BY %I', pg_catalog.pg_get_userbyid(m.grantor))"
        " ELSE '' END\n"
        "    || ' CASCADE;'\n"
        "FROM (SELECT pg_catalog.pg_get_userbyid(a.roleid)::pg_catalog.text AS role,\n"
        "    pg_catalog.pg_get_userbyid(a.member)::pg_catalog.text AS member, a.grantor, a.admin_option\n"
        "  FROM pg_catalog.pg_auth_members a) m\n"
        "LEFT JOIN planned_member p ON p.role = m.role AND p.member = m.member\n"
        f"WHERE m.member <> {literal(plan.admin)} AND (p.role IS NULL OR m.admin_option)\n"
        f"  AND (m.member IN (SELECT rolname FROM managed) OR m.role = ANY ({owners_and_logins})\n"
        "    OR (m.admin_option AND m.role IN (SELECT rolname FROM managed)))"
    )
    return cte, select


def excess_query(plan: AccessPlan, database: str | None, *, cluster: bool, mode: ExcessMode = "all") -> str:
    """One read-only query, rows (problem, fix): what the plan's roles and PUBLIC hold beyond the plan.

    In `database` (None: in none): on its tables, views, sequences and their columns (in every schema
    but the system's), its schemas, functions and default privileges. With `cluster`: on every
    database, and the memberships. Never reported: what a role holds as an object's owner; PUBLIC where
    the plan leaves it alone (an adopted server's databases and app schemas, functions outside the
    lookup function's schema, an extension's objects). In mode "revoke" the problems are NULL.
    """
    auth = [AUTH_SCHEMA] if plan.pooler else []
    app_schemas = [s for db in plan.databases if db.name == database for s in db.schemas]
    # Where PUBLIC is the plan's: on an adopted server only in the lookup function's schema (its own).
    public_relations = _texts(auth + ([] if plan.adopted else app_schemas))
    public_schemas = _texts(auth + ([] if plan.adopted else [*app_schemas, "public"]))
    public_databases = _texts([] if plan.adopted else [db.name for db in plan.databases])
    ctes = [
        f"managed AS ({_rows(('rolname', 'kind', 'why'), _managed(plan, why=mode != 'revoke'))})",
        "grantee AS (\n  SELECT r.oid, m.rolname AS grantee, pg_catalog.quote_ident(m.rolname) AS grantee_sql, "
        "m.kind, m.why\n  FROM managed m JOIN pg_catalog.pg_roles r ON r.rolname = m.rolname\n"
        f"  UNION ALL SELECT 0::pg_catalog.oid, 'PUBLIC', 'PUBLIC', 'public', {literal(_WHY['public'])})",
        f"planned AS ({_rows(('kind', 'db', 'schema', 'object', 'grantee', 'privilege'), _planned(plan, database))})",
    ]
    same = "p.grantee = s.grantee AND p.privilege = s.privilege"
    in_schema = f"p.schema = s.schema AND (p.object IS NULL OR p.object = s.name) AND {same}"
    parts: list[tuple[str, str]] = []
    if database is not None:
        where = literal(f"{database}: ")
        relations = _relations(public_relations)
        parts.append(_object_units("relation_units", relations, f"p.kind = pg_catalog.lower(s.keyword) AND {in_schema}",
                                   mode, where))  # fmt: skip
        schemas = _schemas(public_schemas)
        parts.append(_object_units("schema_units", schemas, f"p.kind = 'schema' AND p.schema = s.name AND {same}",
                                   mode, where))  # fmt: skip
        functions = _functions(_texts(auth))
        parts.append(_object_units("function_units", functions, f"p.kind = 'function' AND {in_schema}", mode, where))
        parts += [_columns(mode, public_relations, where), _defaults(plan, database, mode, where)]
    if cluster:
        databases = _databases(public_databases)
        parts.append(_object_units("database_units", databases, f"p.kind = 'database' AND p.db = s.name AND {same}",
                                   mode, "''"))  # fmt: skip
        if mode != "rest":  # a membership's fixes are all plain revokes
            parts.append(_memberships(plan, mode))
    if not parts:
        return f"SELECT {_NO_PROBLEM} AS problem, {_NO_PROBLEM} AS fix WHERE false"
    ctes += [cte for cte, _ in parts]
    with_ctes = "WITH " + ",\n".join(ctes)
    union = "\nUNION ALL\n".join(select for _, select in parts)
    return f"{with_ctes}\nSELECT problem, fix FROM (\n{union}\n) AS beyond (problem, fix)\nORDER BY 1, 2"


def revoke_excess(plan: AccessPlan, database: str, mode: ExcessMode = "revoke") -> str:
    """A DO block that runs each fix of excess_query in `database`; the database privileges and the
    memberships with the plan's first database only (one step: no two re-apply steps revoke them at once).

    A fix the admin may not run (a managed server's admin, an object it has no rights on) is skipped with
    a WARNING that names it; the check keeps reporting it.
    """
    cluster = database == plan.databases[0].name
    query = excess_query(plan, database, cluster=cluster, mode=mode).replace("\n", "\n    ")
    return (
        f"DO $beyond$\nDECLARE\n  excess record;\nBEGIN\n  FOR excess IN\n    {query}\n  LOOP\n    BEGIN\n"
        "      EXECUTE excess.fix;\n    EXCEPTION WHEN insufficient_privilege THEN\n"
        "      RAISE WARNING 'not revoked (%): %', SQLERRM, excess.fix;\n    END;\n  END LOOP;\nEND\n$beyond$;"
    )
