"""SQL rendered from the access plan (pure, no pulumi).

Two uses: the statements pulumi-postgresql cannot declare (run by SqlApply on every up), and the whole
plan as an idempotent psql script (scripts/render_sql.py) for operators who review SQL or whose
server Pulumi cannot reach. Both read the same AccessPlan the Pulumi resources are built from.
"""

from __future__ import annotations

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
from postgres_platform.model.names import AUTH_FUNCTION, AUTH_SCHEMA, SUPERUSER


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
    """What the SqlApply step runs in one database on every up (and render_script runs there too)."""
    revokes = revoke_migration_writes([r for r in plan.migration_revokes if r.database == database])
    return "\n".join(s for s in (harden_auth_function() if plan.pooler else "", revokes) if s)


def reapply_check(plan: AccessPlan, database: str) -> str:
    """One read-only query: true when everything reapply_script establishes is in place."""
    conditions = ["true"]
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


def auth_function_statements() -> list[str]:
    return [
        f"CREATE SCHEMA IF NOT EXISTS {ident(AUTH_SCHEMA)} AUTHORIZATION {ident(SUPERUSER)};",
        f"ALTER SCHEMA {ident(AUTH_SCHEMA)} OWNER TO {ident(SUPERUSER)};",
        f"CREATE OR REPLACE FUNCTION {AUTH_FUNCTION_SIGNATURE.replace('(text)', '(p_usename text)')}\n"
        "RETURNS TABLE(usename text, passwd text)\nLANGUAGE sql STABLE SECURITY DEFINER\n"
        f"AS $function${auth_function_body()}$function$;",
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
        out.append("COMMIT;")
        for move in plan.ownership:
            if move.database == db.name:
                out.append(ownership_script(move, plan.admin_superuser))
    return "\n".join(out) + "\n"
