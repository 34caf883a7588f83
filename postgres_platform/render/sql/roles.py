"""Roles: their attributes and limits, memberships, passwords, and their retirement."""

from __future__ import annotations

from postgres_platform.model.access import Role
from postgres_platform.render.sql.quoting import ident, literal


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


def set_password(role: str, verifier: str) -> str:
    """Set a role's password from its SCRAM verifier: stored as is, so no plaintext reaches the server's logs."""
    return f"ALTER ROLE {ident(role)} WITH PASSWORD {literal(verifier)};\n"


def password_variable(role: str) -> str:
    """The psql variable that carries a role's password into the script (never the script itself)."""
    return f"{role}_password"


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
