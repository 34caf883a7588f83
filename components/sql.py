"""SQL the postgresql provider cannot express, rendered from the access plan (pure, no pulumi)."""

from __future__ import annotations

from components.access import MIGRATION_TABLE_REVOKES, MigrationRevoke
from components.names import AUTH_FUNCTION, AUTH_SCHEMA


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


def _qualified(table: str) -> str:
    schema, name = table.split(".", 1)
    return f"{ident(schema)}.{ident(name)}"
