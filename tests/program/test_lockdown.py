"""The lockdown (existing.lockdown) as the program declares it, under mocks: the external roles' CONNECT
grants are declared resources, the re-apply step holding the database privileges runs the guard and the
revoke and waits for every database's grants, and the policies pass."""

from __future__ import annotations

import copy
import json

from policy.policies import ESCALATING
from postgres_platform.model.load import load_stack_values
from postgres_platform.model.stackfile import read_stack_values, stack_file
from postgres_platform.offline.policies import evaluate
from postgres_platform.offline.policy_config import policy_config
from postgres_platform.offline.program import ProgramRun, run_program
from tests.helpers import run_of

LEGACY_VALUES = read_stack_values(stack_file("legacy"))
EXISTING = "postgres-platform:existing"
GRANT = "postgresql:index/grant:Grant"
SQL_APPLY = "pulumi-python:dynamic/postgres-platform:SqlApply"


def locked_run() -> ProgramRun:
    values = copy.deepcopy(LEGACY_VALUES)
    values[EXISTING] = json.dumps({**json.loads(values[EXISTING]), "lockdown": True})
    return run_program("legacy", values)


def database_grants(run: ProgramRun) -> dict[tuple[str, str], list[str]]:
    return {
        (g.inputs["database"], g.inputs["role"]): g.inputs["privileges"]
        for g in run.of_type(GRANT)
        if g.inputs["objectType"] == "database"
    }


def test_each_external_role_gets_a_declared_connect_grant_on_each_database_only_under_the_lockdown() -> None:
    run, before = locked_run(), run_of("legacy")
    externals = json.loads(LEGACY_VALUES["postgres-platform:externalRoles"])
    grants = database_grants(run)
    for database in ("tracksolid_db", "fleet_platform"):
        for role in externals:
            assert grants[(database, role)] == ["CONNECT"], (database, role)
    assert not [key for key in database_grants(before) if key[1] in externals]
    assert not [key for key in grants if key[1] == "public"]  # the revoke is the re-apply step's


def test_the_step_holding_the_database_privileges_guards_revokes_and_waits_for_every_grant() -> None:
    run = locked_run()
    steps = {r.name: r for r in run.of_type(SQL_APPLY) if r.name.endswith("-reapply")}
    first = next(r for name, r in steps.items() if "tracksolid_db" in name)
    other = next(r for name, r in steps.items() if "fleet_platform" in name)
    assert "$lockdown$" in first.inputs["sql"] and "$lockdown$" not in other.inputs["sql"]
    assert (
        "a.privilege_type = 'CONNECT' AND d.datname = ANY (ARRAY['tracksolid_db', 'fleet_platform']"
        in (first.inputs["check"])
    )
    for step in (first, other):
        assert ESCALATING.search(step.inputs["sql"]) is None and ESCALATING.search(step.inputs["check"]) is None
    grant_urns: dict[str, set[str]] = {}
    for g in run.of_type(GRANT):
        grant_urns.setdefault(g.inputs["database"], set()).add(g.urn)
    # The first database's step revokes PUBLIC's CONNECT on both: it waits for both databases' grants.
    assert grant_urns["tracksolid_db"] | grant_urns["fleet_platform"] <= set(first.dependencies)
    assert grant_urns["fleet_platform"] <= set(other.dependencies)
    assert not grant_urns["tracksolid_db"] & set(other.dependencies)


def test_the_locked_down_stack_passes_the_policies() -> None:
    values = copy.deepcopy(LEGACY_VALUES)
    values[EXISTING] = json.dumps({**json.loads(values[EXISTING]), "lockdown": True})
    results = evaluate(run_program("legacy", values), policy_config(load_stack_values(values)))
    assert {r.name: r.violations for r in results if r.violations} == {}
    assert "sql-steps" in {r.name for r in results}
