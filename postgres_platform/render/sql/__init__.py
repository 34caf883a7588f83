"""SQL rendered from the access plan (pure, no pulumi).

Two uses: the statements pulumi-postgresql cannot declare (run by SqlApply on every up), and the whole
plan as an idempotent psql script (scripts/render_sql.py) for operators who review SQL or whose
server Pulumi cannot reach. Both read the same AccessPlan the Pulumi resources are built from.
"""

from postgres_platform.render.sql.auth_function import (
    AUTH_FUNCTION_DEFINITION,
    AuthFunction,
    auth_function_statements,
    harden_auth_function,
)
from postgres_platform.render.sql.excess import (
    BOOTSTRAP_SUPERUSER_OID,
    SHOWN_OBJECTS,
    ExcessMode,
    excess_query,
    holds_cluster,
    revoke_excess,
)
from postgres_platform.render.sql.grants import default_privilege_statements, grant_statements, revoke_migration_writes
from postgres_platform.render.sql.lockdown import cut_off_query, declared_roles, lockdown_guard
from postgres_platform.render.sql.ownership import (
    ownership_candidates,
    ownership_check,
    ownership_script,
)
from postgres_platform.render.sql.quoting import ident, literal
from postgres_platform.render.sql.reapply import reapply_check, reapply_script
from postgres_platform.render.sql.roles import (
    membership_statements,
    password_variable,
    retire_role,
    role_statements,
    set_password,
)
from postgres_platform.render.sql.script import render_script

__all__ = [
    "AUTH_FUNCTION_DEFINITION",
    "BOOTSTRAP_SUPERUSER_OID",
    "SHOWN_OBJECTS",
    "AuthFunction",
    "ExcessMode",
    "auth_function_statements",
    "cut_off_query",
    "declared_roles",
    "default_privilege_statements",
    "excess_query",
    "grant_statements",
    "harden_auth_function",
    "holds_cluster",
    "ident",
    "literal",
    "lockdown_guard",
    "membership_statements",
    "ownership_candidates",
    "ownership_check",
    "ownership_script",
    "password_variable",
    "reapply_check",
    "reapply_script",
    "render_script",
    "retire_role",
    "revoke_excess",
    "revoke_migration_writes",
    "role_statements",
    "set_password",
]
