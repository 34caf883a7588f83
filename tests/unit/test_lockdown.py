"""The lockdown at the end of a cutover (existing.lockdown, existing.adminCidrs), without a server: the
config keys, the plan's grants, where the revoke and its guard are rendered, and the pg_hba check on rows.
(tests/integration/test_lockdown.py runs them against a real adopted server.)"""

from __future__ import annotations

import ipaddress
import json
from typing import Any

import pytest

from policy.policies import ESCALATING
from postgres_platform.cli.hba_lines import main
from postgres_platform.model import access
from postgres_platform.model.config import ConfigError, PlatformConfig
from postgres_platform.model.load import load_stack_values, parse
from postgres_platform.model.stackfile import read_stack_values, stack_file
from postgres_platform.ops.lockdown import HbaRule, cut_off_problems, hba_lines, hba_problems
from postgres_platform.render import sql
from postgres_platform.render.pg_hba import HbaSources, render_pg_hba
from tests.helpers import valid_config

LEGACY_VALUES = read_stack_values(stack_file("legacy"))
EXISTING = "postgres-platform:existing"


def legacy(**existing: Any) -> PlatformConfig:
    """The legacy stack with these keys added to (or changed in) its existing section."""
    values = dict(LEGACY_VALUES)
    values[EXISTING] = json.dumps({**json.loads(LEGACY_VALUES[EXISTING]), **existing})
    return load_stack_values(values)


def errors(**existing: Any) -> list[str]:
    with pytest.raises(ConfigError) as caught:
        legacy(**existing)
    return caught.value.lines


# ---- the config keys


def test_lockdown_is_off_by_default_and_takes_a_boolean() -> None:
    existing = legacy().existing
    assert existing is not None and existing.lockdown is False and existing.admin_cidrs is None
    assert legacy(lockdown=True).existing.lockdown is True  # type: ignore[union-attr]


@pytest.mark.parametrize(
    ("change", "expected"),
    [
        ({"lockdown": "yes"}, 'existing.lockdown: must be a valid boolean, got "yes"'),
        ({"lockdown": 1}, "existing.lockdown: must be a valid boolean, got 1"),
        ({"adminCidrs": "203.0.113.10/32"}, 'existing.adminCidrs: must be a valid list, got "203.0.113.10/32"'),
        ({"adminCidrs": []}, "existing.adminCidrs: must have at least 1 item"),
        ({"adminCidrs": ["nope"]}, 'existing.adminCidrs[0]: must be a CIDR such as 10.0.0.0/16, got "nope"'),
        ({"adminCidrs": ["0.0.0.0/0"]}, "existing.adminCidrs: together admit the admin from more than a /16 of IPv4"),
        (
            {"adminCidrs": ["203.0.113.10/32"], "adminSuperuser": False},
            "existing.adminCidrs: needs existing.adminSuperuser",
        ),
    ],
)
def test_bad_lockdown_keys_get_one_line_naming_key_and_value(change: dict[str, Any], expected: str) -> None:
    (line,) = errors(**change)
    assert line.startswith(expected) and "\n" not in line


def test_the_keys_belong_to_the_existing_section_only() -> None:
    config = valid_config()
    config["lockdown"] = True
    with pytest.raises(ConfigError, match="lockdown"):
        parse(config)


# ---- the plan


def database_grants(plan: access.AccessPlan) -> dict[tuple[str, str], tuple[str, ...]]:
    return {(g.database, g.role): g.privileges for g in plan.grants if g.object_type == "database"}


def test_locked_down_each_external_role_and_group_holds_connect_on_each_adopted_database() -> None:
    config = legacy(lockdown=True)
    plan = access.plan(config)
    grants = database_grants(plan)
    assert plan.lockdown and set(plan.external_roles) == set(config.external_roles)
    for db in plan.databases:
        for role in config.external_roles:
            assert grants[(db.name, role)] == ("CONNECT",), (db.name, role)
        for group in db.groups:
            assert "CONNECT" in grants[(db.name, group.name)], (db.name, group.name)
    # Each app connects through its group, and only to its own database.
    for app, spec in config.apps.items():
        app_group = config.app_group(app)
        assert [db for (db, role) in grants if role == app_group] == [spec.database]
    assert not [key for key in grants if key[1] == "public"]  # PUBLIC's CONNECT goes by the re-apply step


def test_without_the_lockdown_no_external_role_is_granted_anything() -> None:
    plan = access.plan(legacy())
    assert not plan.lockdown
    assert not [g for g in plan.grants if g.role in plan.external_roles or g.role == "public"]


def test_publics_connect_is_beyond_the_plan_in_the_cluster_query_only_under_the_lockdown() -> None:
    locked, open_ = access.plan(legacy(lockdown=True)), access.plan(legacy())
    names = ", ".join(f"'{db.name}'" for db in locked.databases)
    clause = f"a.privilege_type = 'CONNECT' AND d.datname = ANY (ARRAY[{names}]::pg_catalog.text[])"
    assert clause in sql.excess_query(locked, None, cluster=True, mode="revoke")
    assert clause in sql.reapply_script(locked, locked.databases[0].name)
    assert clause in sql.reapply_check(locked, locked.databases[0].name)  # so a preview shows the step
    assert "d.datname = ANY (ARRAY[]::pg_catalog.text[]))" in sql.excess_query(open_, None, cluster=True)
    assert clause not in sql.excess_query(open_, None, cluster=True)
    assert clause not in sql.reapply_script(open_, open_.databases[0].name)


def test_the_guard_runs_before_the_revoke_in_the_step_holding_the_database_privileges_only() -> None:
    plan = access.plan(legacy(lockdown=True))
    first, *others = [db.name for db in plan.databases]
    script = sql.reapply_script(plan, first)
    guard = sql.lockdown_guard(plan, first)
    assert guard and script.index(guard) < script.index(sql.revoke_excess(plan, first))
    assert "RAISE EXCEPTION 'lockdown refused" in guard
    for name in others:
        assert sql.lockdown_guard(plan, name) == "" and "$lockdown$" not in sql.reapply_script(plan, name)
    assert "$lockdown$" not in sql.reapply_script(access.plan(legacy()), first)
    # The plan script: the guard in the first database's transaction, before its revokes.
    section = sql.render_script(plan).split(f'\\connect "{first}"\n', 1)[1].split("\\connect ", 1)[0]
    assert section.index("BEGIN;") < section.index(guard) < section.index("DO $beyond$") < section.index("COMMIT;")


def test_the_guard_spares_every_declared_role_and_the_admin_and_passes_policy_sql_steps() -> None:
    config = legacy(lockdown=True)
    plan = access.plan(config)
    query = sql.cut_off_query(plan)
    for role in [*(r.name for r in plan.roles), *config.external_roles, plan.admin]:
        assert f"'{role}'" in query, role
    assert "NOT r.rolsuper" in query
    for db in plan.databases:
        for text in (sql.reapply_script(plan, db.name), sql.reapply_check(plan, db.name)):
            assert ESCALATING.search(text) is None, db.name
    assert "ARRAY[]::pg_catalog.text[]" in sql.cut_off_query(access.plan(legacy()))  # no database: no rows


def test_a_refusal_names_the_role_and_the_database() -> None:
    (problem,) = cut_off_problems([("rogue", "fleet_platform", 2)])
    assert "role rogue (2 session(s) on fleet_platform)" in problem["problem"]
    assert "externalRoles" in problem["fix"]


# ---- pg_hba.conf


def rule(n: int, type_: str, users: list[str], address: str | None, netmask: str | None, method: str) -> HbaRule:
    return HbaRule.of(
        {
            "line_number": n,
            "type": type_,
            "database": ["all"],
            "user_name": users,
            "address": address,
            "netmask": netmask,
            "auth_method": method,
        }
    )


ADMIN_CIDRS = ["203.0.113.10/32", "198.51.100.0/24"]
GOOD = [
    rule(1, "local", ["all"], None, None, "peer"),
    rule(2, "hostssl", ["postgres"], "203.0.113.10", "255.255.255.255", "scram-sha-256"),
    rule(3, "hostssl", ["postgres"], "198.51.100.0", "255.255.255.0", "scram-sha-256"),
    rule(4, "host", ["postgres"], "0.0.0.0", "0.0.0.0", "reject"),
    rule(5, "host", ["postgres"], "::", "::", "reject"),
    rule(6, "host", ["all"], "all", None, "scram-sha-256"),
]


def test_the_lines_to_add_admit_the_admin_from_its_addresses_and_reject_it_elsewhere() -> None:
    lines = [line.split() for line in hba_lines(legacy(adminCidrs=ADMIN_CIDRS)).splitlines()]
    assert lines == [
        ["hostssl", "all", "postgres", "203.0.113.10/32", "scram-sha-256"],
        ["hostssl", "all", "postgres", "198.51.100.0/24", "scram-sha-256"],
        ["host", "all", "postgres", "0.0.0.0/0", "reject"],
        ["host", "all", "postgres", "::/0", "reject"],
    ]
    assert hba_lines(legacy()) == ""  # no addresses: nothing to add, nothing checked
    assert hba_problems(legacy(), []) == []


def test_a_pg_hba_with_the_lines_first_has_no_problem() -> None:
    assert hba_problems(legacy(adminCidrs=ADMIN_CIDRS), GOOD) == []


def test_each_missing_line_is_named_with_its_fix() -> None:
    config = legacy(adminCidrs=ADMIN_CIDRS)
    problems = hba_problems(config, [GOOD[0], GOOD[1], GOOD[5]])
    texts = [p["problem"] for p in problems]
    assert "pg_hba.conf lacks `hostssl all postgres 198.51.100.0/24 scram-sha-256`" in texts
    assert "pg_hba.conf lacks `host all postgres 0.0.0.0/0 reject`" in texts
    assert "pg_hba.conf lacks `host all postgres ::/0 reject`" in texts
    # Without its reject lines, the catch-all line admits the admin from anywhere.
    assert (
        "pg_hba.conf line 6 (`host all all all scram-sha-256`) admits postgres from outside existing.adminCidrs"
        in texts
    )
    assert all("pg_reload_conf" in p["fix"] for p in problems)


def test_a_line_admitting_the_admin_before_the_rejects_is_named() -> None:
    config = legacy(adminCidrs=ADMIN_CIDRS)
    early = rule(0, "hostssl", ["+ops"], "10.0.0.0", "255.0.0.0", "scram-sha-256")
    early = HbaRule(0, 7, early.type, early.databases, early.users, early.address, early.netmask, early.method)
    assert hba_problems(config, [early, *GOOD]) == []  # postgres is no member of ops
    (problem,) = hba_problems(config, [early, *GOOD], groups=["ops"])
    assert problem["problem"].startswith(
        "pg_hba.conf line 7 (`hostssl all +ops 10.0.0.0/8 scram-sha-256`) admits postgres"
    )
    # A line from inside the admin addresses is no problem; a line that does not load is.
    inside = HbaRule(0, 8, "host", ("all",), ("all",), "203.0.113.10", "255.255.255.255", "scram-sha-256")
    broken = HbaRule(9, 9, None, (), (), None, None, None, error='invalid authentication method "nope"')
    assert [p["problem"] for p in hba_problems(config, [inside, *GOOD, broken])] == [
        'pg_hba.conf line 9 does not load: invalid authentication method "nope"'
    ]


def rules_of(text: str) -> list[HbaRule]:
    """pg_hba.conf text as pg_hba_file_rules would read it (CIDR lines, `all` or names)."""
    rules = []
    for n, line in enumerate(text.splitlines(), 1):
        type_, database, user, *rest = line.split()
        address, netmask = None, None
        if type_ != "local":
            network = ipaddress.ip_network(rest[0])
            address, netmask = str(network.network_address), str(network.netmask)
        rules.append(HbaRule(n, n, type_, (database,), (user,), address, netmask, rest[-1]))
    return rules


def test_the_pg_hba_the_program_writes_on_a_host_passes_the_same_check() -> None:
    """Where the program owns pg_hba.conf (Hetzner), the superuser comes only from adminCidrs: the check
    an adopted server gets finds nothing missing in it."""
    hetzner = load_stack_values(read_stack_values(stack_file("prod")))
    assert hetzner.hetzner is not None
    cidrs = list(hetzner.hetzner.admin_cidrs)
    text = render_pg_hba(hetzner, HbaSources((hetzner.hetzner.subnet,), tuple(cidrs)))
    assert hba_problems(legacy(adminCidrs=cidrs), rules_of(text)) == []
    # And the same file with its superuser line widened to everywhere fails it.
    lines = [line.split() for line in text.splitlines()]
    superuser = lines.index(["hostssl", "all", "postgres", cidrs[0], "scram-sha-256"])
    lines[superuser][3] = "0.0.0.0/0"
    widened = "\n".join(" ".join(line) for line in lines)
    assert any(
        "admits postgres from outside" in p["problem"]
        for p in hba_problems(legacy(adminCidrs=cidrs), rules_of(widened))
    )


def test_the_lines_command_says_in_one_line_what_is_missing(capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["legacy"]) == 2  # Pulumi.legacy.yaml sets no adminCidrs
    assert (
        capsys.readouterr().err
        == "error: legacy: no lines: set existing.adminCidrs (target existing, adminSuperuser true)\n"
    )
    assert main(["no-such-stack"]) == 2
    assert capsys.readouterr().err.endswith("Pulumi.no-such-stack.yaml: no such stack file\n")
