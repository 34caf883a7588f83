"""The whole plan as one idempotent psql script (scripts/render_sql.py)."""

from __future__ import annotations

from postgres_platform.model.access import AccessPlan, Database
from postgres_platform.render.sql.auth_function import auth_function_statements
from postgres_platform.render.sql.excess import revoke_excess
from postgres_platform.render.sql.grants import (
    default_privilege_statements,
    grant_statements,
    migration_revokes_in,
    revoke_migration_writes,
)
from postgres_platform.render.sql.lockdown import lockdown_guard
from postgres_platform.render.sql.locks import LOCK_TIMEOUT
from postgres_platform.render.sql.ownership import ownership_script
from postgres_platform.render.sql.quoting import ident, literal
from postgres_platform.render.sql.roles import membership_statements, password_variable, role_statements


def render_script(plan: AccessPlan) -> str:
    """The whole plan as a psql script for the plan's admin; passwords arrive as -v <role>_password=...

    Each part runs in one transaction, as the provider's revoke-then-grant does: a live app never sees
    the moment between a REVOKE ALL and its GRANT. (CREATE DATABASE cannot run in one: it runs alone;
    nor can the ownership move, which commits per object.) On an adopted server databases and schemas
    must exist: the script stops if one does not, and never changes their owners but by the move.
    """
    out = _header(plan) + _roles(plan) + _created_databases(plan)
    for db in plan.databases:
        out += _database(plan, db)
    return "\n".join(out) + "\n"


def _header(plan: AccessPlan) -> list[str]:
    return [
        "-- postgres-platform: the access plan as SQL. Idempotent: run it again to converge.",
        f"-- psql -v ON_ERROR_STOP=1 {' '.join(f'-v {password_variable(r.name)}=...' for r in plan.logins)} -f -",
        "-- Give each password variable the role's SCRAM verifier (docs/access-model.md), or the password itself.",
        f"-- Run as {plan.admin}{'' if plan.admin_superuser else ' (CREATEROLE, not a superuser)'}.",
        "\\set ON_ERROR_STOP 1",
        "SET client_min_messages = warning;",
        # The script stops at a lock it cannot get in time; run it again once the migration ends.
        f"SET lock_timeout = {literal(LOCK_TIMEOUT)};",
    ]


def _roles(plan: AccessPlan) -> list[str]:
    """Every role and its memberships, in one transaction."""
    out = ["BEGIN;"]
    for role in plan.roles:
        out += role_statements(role, plan.admin_superuser)
    for role in plan.roles:
        out += membership_statements(role)
    if not plan.admin_superuser:
        # Default privileges FOR ROLE <owner> need membership in it (the provider grants it for the call).
        out += [f"GRANT {ident(role.name)} TO CURRENT_USER;" for role in plan.owners]
    return [*out, "COMMIT;"]


def _created_databases(plan: AccessPlan) -> list[str]:
    """The databases the plan creates (none on an adopted server), each owned by its owner role."""
    out = []
    for db in plan.databases if not plan.adopted else ():
        out.append(
            f"SELECT 'CREATE DATABASE {ident(db.name)} OWNER {ident(db.owner)}' WHERE NOT EXISTS "
            f"(SELECT 1 FROM pg_catalog.pg_database WHERE datname = {literal(db.name)})\\gexec"
        )
        out.append(f"ALTER DATABASE {ident(db.name)} OWNER TO {ident(db.owner)};")
    return out


def _database(plan: AccessPlan, db: Database) -> list[str]:
    """In `db`, in one transaction: its schemas, the lookup function, the grants and default privileges,
    the migration-table revokes and what the roles hold beyond the plan; then the ownership move."""
    out = ["", f"\\connect {ident(db.name)}", "SET client_min_messages = warning;", "BEGIN;", *_schemas(plan, db)]
    if plan.has_pgbouncer:
        out += auth_function_statements()
    for grant in plan.grants:
        if grant.database == db.name:
            out += grant_statements(grant)
    for default in plan.default_privileges:
        if default.database == db.name:
            out += default_privilege_statements(default)
    revoke = revoke_migration_writes(migration_revokes_in(plan, db.name))
    if revoke:
        out.append(revoke)
    # What the roles hold beyond the plan, in the grants' transaction: the re-apply step's revokes,
    # then the ones it may not run (an option to pass a privilege on, another grantor's grant). Under the
    # lockdown its guard first: the transaction stops while an undeclared client depends on PUBLIC's CONNECT.
    guard = lockdown_guard(plan, db.name)
    out += [*([guard] if guard else []), revoke_excess(plan, db.name), revoke_excess(plan, db.name, mode="rest")]
    out.append("COMMIT;")
    out += [ownership_script(move, plan.admin_superuser) for move in plan.ownership if move.database == db.name]
    return out


def _schemas(plan: AccessPlan, db: Database) -> list[str]:
    """Created and owned by the database's owner role; on an adopted server, required to exist."""
    if plan.adopted:
        return [
            f"DO $adopt$ BEGIN IF pg_catalog.to_regnamespace({literal(schema)}) IS NULL THEN RAISE EXCEPTION "
            f"'schema {schema} does not exist in {db.name}: an adopted server''s schemas are never created'; "
            "END IF; END $adopt$;"
            for schema in db.schemas
        ]
    out = []
    for schema in db.schemas:
        out.append(f"CREATE SCHEMA IF NOT EXISTS {ident(schema)} AUTHORIZATION {ident(db.owner)};")
        out.append(f"ALTER SCHEMA {ident(schema)} OWNER TO {ident(db.owner)};")
    return out
