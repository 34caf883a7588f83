"""What the SqlApply step re-applies in each database on every up, and its check."""

from __future__ import annotations

from postgres_platform.model.access import AccessPlan
from postgres_platform.render.sql.auth_function import auth_function_hardened, harden_auth_function
from postgres_platform.render.sql.excess import excess_query, holds_cluster, revoke_excess
from postgres_platform.render.sql.grants import migration_revokes_in, migration_writes_revoked, revoke_migration_writes
from postgres_platform.render.sql.lockdown import lockdown_guard


def reapply_script(plan: AccessPlan, database: str) -> str:
    """What the SqlApply step runs in one database on every up (and render_script runs there too): the
    lookup function's search_path, the migration-table revokes, and every privilege beyond the plan
    revoked (revoke_excess), in one transaction (psycopg sends it as one simple query). Under the lockdown,
    its guard first: the step stops while an undeclared client depends on PUBLIC's CONNECT."""
    revokes = revoke_migration_writes(migration_revokes_in(plan, database))
    guard = lockdown_guard(plan, database)
    steps = (harden_auth_function() if plan.has_pgbouncer else "", revokes, guard, revoke_excess(plan, database))
    return "\n".join(s for s in steps if s)


def reapply_check(plan: AccessPlan, database: str) -> str:
    """One read-only query: true when everything reapply_script establishes is in place (so a preview
    shows the step again when a privilege beyond the plan appeared since the last up)."""
    beyond = excess_query(plan, database, cluster=holds_cluster(plan, database), mode="revoke")
    conditions = [f"NOT EXISTS (\n{beyond}\n)"]
    if plan.has_pgbouncer:
        conditions.append(auth_function_hardened())
    conditions += migration_writes_revoked(migration_revokes_in(plan, database))
    return "SELECT " + "\n  AND ".join(conditions)
