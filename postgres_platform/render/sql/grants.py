"""Grants, default privileges and the migration tables' revokes, as the plan gives them."""

from __future__ import annotations

from postgres_platform.model.access import (
    MIGRATION_TABLE_REVOKES,
    AccessPlan,
    DefaultPrivilege,
    Grant,
    MigrationRevoke,
)
from postgres_platform.render.sql.quoting import ident, literal

_ALL = {"table": "ALL TABLES IN SCHEMA", "sequence": "ALL SEQUENCES IN SCHEMA", "function": "ALL FUNCTIONS IN SCHEMA"}
_DEFAULT_KIND = {"table": "TABLES", "sequence": "SEQUENCES"}


def _grantee(role: str) -> str:
    return "PUBLIC" if role == "public" else ident(role)


def _qualified(table: str) -> str:
    schema, name = table.split(".", 1)
    return f"{ident(schema)}.{ident(name)}"


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


def migration_revokes_in(plan: AccessPlan, database: str) -> list[MigrationRevoke]:
    return [r for r in plan.migration_revokes if r.database == database]


def migration_writes_revoked(revokes: list[MigrationRevoke]) -> list[str]:
    """SQL conditions, one per table and role: true when the table is absent or the role may not write it."""
    conditions = []
    for revoke in revokes:
        for role in revoke.roles:
            held = " OR ".join(
                f"pg_catalog.has_table_privilege({literal(role)}, {literal(revoke.table)}, {literal(p)})"
                for p in MIGRATION_TABLE_REVOKES
            )
            conditions.append(f"(pg_catalog.to_regclass({literal(revoke.table)}) IS NULL OR NOT ({held}))")
    return conditions
