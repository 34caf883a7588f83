"""The SQL that finds and revokes privileges beyond the plan (render.sql.excess_query), without a server:
where it runs, in which transaction, and that the re-apply step's share of it only revokes.
(tests/integration/test_grant_drift.py runs it on a real server.)"""

from __future__ import annotations

import pytest

from policy.policies import ESCALATING
from postgres_platform.model import access
from postgres_platform.model.load import load_stack_values
from postgres_platform.model.stackfile import read_stack_values, stack_file
from postgres_platform.render import sql
from tests.helpers import STACKS


def plan_of(stack: str) -> access.AccessPlan:
    return access.plan(load_stack_values(read_stack_values(stack_file(stack))))


@pytest.mark.parametrize("stack", STACKS)
def test_the_re_apply_step_only_revokes_as_policy_sql_steps_demands(stack: str) -> None:
    plan = plan_of(stack)
    for db in plan.databases:
        for text in (sql.reapply_script(plan, db.name), sql.reapply_check(plan, db.name)):
            assert ESCALATING.search(text) is None, (stack, db.name)
        assert sql.revoke_excess(plan, db.name) in sql.reapply_script(plan, db.name)
    # What it may not run (REVOKE GRANT OPTION FOR, SET ROLE) is the plan script's alone.
    rest = sql.revoke_excess(plan, plan.databases[0].name, mode="rest")
    assert ESCALATING.search(rest) is not None and rest not in sql.reapply_script(plan, plan.databases[0].name)


@pytest.mark.parametrize("stack", STACKS)
def test_the_plan_script_revokes_what_is_beyond_it_in_each_databases_grant_transaction(stack: str) -> None:
    plan = plan_of(stack)
    script = sql.render_script(plan)
    for db in plan.databases:
        section = script.split(f'\\connect "{db.name}"\n', 1)[1].split("\\connect ", 1)[0]
        begin, commit = section.index("BEGIN;"), section.index("COMMIT;")
        last_grant = max(
            section.index(s) for g in plan.grants if g.database == db.name for s in sql.grant_statements(g)
        )
        revoke = section.index(sql.revoke_excess(plan, db.name))
        rest = section.index(sql.revoke_excess(plan, db.name, mode="rest"))
        # After the grants, before the one COMMIT: no moment without a planned privilege, none beyond.
        assert begin < last_grant < revoke < rest < commit and "COMMIT;" not in section[begin:rest]


def test_memberships_and_database_privileges_are_the_first_databases_step_only() -> None:
    plan = plan_of("prod")
    first, *others = [db.name for db in plan.databases]
    assert "pg_catalog.pg_auth_members" in sql.reapply_script(plan, first)
    assert "pg_catalog.pg_database " in sql.reapply_check(plan, first)
    for name in others:  # the steps run in parallel: two revoking one pg_database row would collide
        for text in (sql.reapply_script(plan, name), sql.reapply_check(plan, name)):
            assert "pg_catalog.pg_auth_members" not in text and "pg_catalog.pg_database " not in text


def test_the_check_names_problems_and_the_step_only_fixes() -> None:
    plan = plan_of("prod")
    check = sql.excess_query(plan, "tracksolid_db", cluster=True)
    step = sql.excess_query(plan, "tracksolid_db", cluster=True, mode="revoke")
    assert "beyond the plan" in check and "beyond the plan" not in step
    assert "'REVOKE GRANT OPTION FOR '" in check and "GRANT OPTION" not in step
    assert sql.excess_query(plan, None, cluster=False) == (
        "SELECT NULL::pg_catalog.text AS problem, NULL::pg_catalog.text AS fix WHERE false"
    )
