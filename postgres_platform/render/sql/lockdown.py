"""The lockdown's guard (existing.lockdown): PUBLIC's CONNECT on the adopted databases is revoked only
while no live client nobody declared depends on it.

`cut_off_query` lists them: sessions on a database being locked whose role is not declared (an app's
login, a group, an owner, the auth role, an external role), not the admin, not a superuser, and holds
CONNECT there through PUBLIC alone (no ACL item of its own, of a role it inherits from, or the owner's),
while PUBLIC still holds it. `lockdown_guard` stops the step that would revoke it, naming each role and
database; ops.lockdown reports the same rows before `pulumi up`. Both read one query, so they cannot
disagree. It only reads and RAISEs: policy sql-steps lets it into the re-apply step.
"""

from __future__ import annotations

from postgres_platform.model.access import AccessPlan
from postgres_platform.render.sql.excess import holds_cluster
from postgres_platform.render.sql.quoting import text_array

# Every client that needs CONNECT on a database: client backends and logical walsenders.
_CLIENTS = "('client backend', 'walsender')"
_ACL = "pg_catalog.aclexplode(COALESCE(d.datacl, pg_catalog.acldefault('d', d.datdba)))"


def declared_roles(plan: AccessPlan) -> tuple[str, ...]:
    """The roles the stack declares (its own and its external roles) and the admin applying the plan."""
    return tuple(dict.fromkeys((*(r.name for r in plan.roles), *plan.external_roles, plan.admin)))


def cut_off_query(plan: AccessPlan) -> str:
    """Rows (role, database, sessions): who the lockdown would cut off now (none without the lockdown)."""
    locked = text_array([db.name for db in plan.databases] if plan.lockdown else [])
    declared = text_array(declared_roles(plan))
    return (
        "SELECT a.usename::pg_catalog.text AS role, a.datname::pg_catalog.text AS database, "
        "pg_catalog.count(*) AS sessions\n"
        "FROM pg_catalog.pg_stat_activity a JOIN pg_catalog.pg_roles r ON r.oid = a.usesysid\n"
        "JOIN pg_catalog.pg_database d ON d.datname = a.datname\n"
        f"WHERE d.datname = ANY ({locked}) AND a.backend_type IN {_CLIENTS}\n"
        f"  AND a.pid <> pg_catalog.pg_backend_pid() AND NOT r.rolsuper AND r.rolname <> ALL ({declared})\n"
        f"  AND EXISTS (SELECT 1 FROM {_ACL} p WHERE p.grantee = 0 AND p.privilege_type = 'CONNECT')\n"
        f"  AND NOT EXISTS (SELECT 1 FROM {_ACL} o WHERE o.grantee <> 0 AND o.privilege_type = 'CONNECT'\n"
        "    AND pg_catalog.pg_has_role(r.oid, o.grantee, 'USAGE'))\n"
        "GROUP BY 1, 2 ORDER BY 2, 1"
    )


def lockdown_guard(plan: AccessPlan, database: str) -> str:
    """A DO block that stops the step (and its transaction) while cut_off_query finds anyone: in the step
    that revokes the database privileges beyond the plan (holds_cluster), under the lockdown only."""
    if not plan.lockdown or not holds_cluster(plan, database):
        return ""
    query = cut_off_query(plan).replace("\n", "\n    ")
    return (
        "DO $lockdown$\nDECLARE\n  cut pg_catalog.text;\nBEGIN\n"
        "  SELECT pg_catalog.string_agg(pg_catalog.format('role %s (%s session(s) on %s)', role, sessions, database), "
        "'; ')\n"
        f"  INTO cut FROM (\n    {query}\n  ) AS s;\n"
        "  IF cut IS NOT NULL THEN\n"
        "    RAISE EXCEPTION 'lockdown refused: % connects only through PUBLIC''s CONNECT, which the lockdown "
        "revokes, and the stack does not declare it', cut\n"
        "      USING HINT = 'Declare each role under postgres-platform:externalRoles (or move its client to an app), "
        "or end its sessions; then run again.';\n"
        "  END IF;\nEND\n$lockdown$;"
    )
