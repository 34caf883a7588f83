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
    return "\n".join(s for s in (harden_auth_function(), revokes) if s)


def reapply_check(plan: AccessPlan, database: str) -> str:
    """One read-only query: true when everything reapply_script establishes is in place."""
    conditions = [
        f"coalesce((SELECT 'search_path=pg_catalog, pg_temp' = ANY(proconfig) FROM pg_catalog.pg_proc "
        f"WHERE oid = pg_catalog.to_regprocedure({literal(AUTH_FUNCTION_SIGNATURE)})), false)"
    ]
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


def retire_role(role: str, owner: str) -> str:
    """Before a role is dropped: what it owns in this database goes to `owner`; its grants go away.

    Skipped when the role is already gone (a retried delete).
    """
    return (
        f"DO $retire$\nBEGIN\n  IF EXISTS (SELECT 1 FROM pg_catalog.pg_roles WHERE rolname = {literal(role)}) THEN\n"
        f"    REASSIGN OWNED BY {ident(role)} TO {ident(owner)};\n    DROP OWNED BY {ident(role)};\n  END IF;\n"
        f"END\n$retire$;"
    )


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


def role_statements(role: Role) -> list[str]:
    """Create if missing, then set every attribute (so a second run changes nothing)."""
    name = ident(role.name)
    login = "LOGIN" if role.login else "NOLOGIN"
    statements = [
        f"SELECT 'CREATE ROLE {name}' WHERE NOT EXISTS "
        f"(SELECT 1 FROM pg_catalog.pg_roles WHERE rolname = {literal(role.name)})\\gexec",
        f"ALTER ROLE {name} WITH {login} NOSUPERUSER NOCREATEDB NOCREATEROLE NOREPLICATION NOBYPASSRLS INHERIT "
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
    """The whole plan as a psql script for a superuser; passwords arrive as -v <role>_password=...

    Each part runs in one transaction, as the provider's revoke-then-grant does: a live app never sees
    the moment between a REVOKE ALL and its GRANT. (CREATE DATABASE cannot run in one: it runs alone.)
    """
    out = [
        "-- postgres-platform: the access plan as SQL. Idempotent: run it again to converge.",
        f"-- psql -v ON_ERROR_STOP=1 {' '.join(f'-v {password_variable(r.name)}=...' for r in plan.logins)} -f -",
        "-- Give each password variable the role's SCRAM verifier (README), or the password itself.",
        "\\set ON_ERROR_STOP 1",
        "SET client_min_messages = warning;",
        "BEGIN;",
    ]
    for role in plan.roles:
        out += role_statements(role)
    for role in plan.roles:
        out += membership_statements(role)
    out.append("COMMIT;")
    for db in plan.databases:
        out.append(
            f"SELECT 'CREATE DATABASE {ident(db.name)} OWNER {ident(db.owner)}' WHERE NOT EXISTS "
            f"(SELECT 1 FROM pg_catalog.pg_database WHERE datname = {literal(db.name)})\\gexec"
        )
        out.append(f"ALTER DATABASE {ident(db.name)} OWNER TO {ident(db.owner)};")
    for db in plan.databases:
        out += ["", f"\\connect {ident(db.name)}", "SET client_min_messages = warning;", "BEGIN;"]
        for schema in db.schemas:
            out.append(f"CREATE SCHEMA IF NOT EXISTS {ident(schema)} AUTHORIZATION {ident(db.owner)};")
            out.append(f"ALTER SCHEMA {ident(schema)} OWNER TO {ident(db.owner)};")
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
    return "\n".join(out) + "\n"
