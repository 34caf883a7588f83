"""The policy pack, called directly with args shaped as the engine sends them (camelCase, proxied)."""

from __future__ import annotations

import importlib
import sys
from typing import Any

import pytest
from pulumi_policy import (
    PolicyCustomTimeouts,
    PolicyResource,
    PolicyResourceOptions,
    ResourceValidationArgs,
    StackValidationArgs,
)
from pulumi_policy.policy import _NotApplicableError
from pulumi_policy.proxy import UNKNOWN_NUMBER_VALUE, UNKNOWN_STRING_VALUE, UnknownValueError, unknown_checking_proxy

from policy import policies
from postgres_platform.model.load import load_stack_values
from postgres_platform.model.stackfile import read_stack_values, stack_file
from postgres_platform.offline.policies import evaluate
from postgres_platform.offline.policy_config import policy_config
from tests.helpers import STACKS, run_of


def opts(protect: bool = False) -> PolicyResourceOptions:
    return PolicyResourceOptions(protect, [], None, [], PolicyCustomTimeouts(0, 0, 0), [])


def resource(type_: str, name: str, props: dict[str, Any], *, protect: bool = False,
             deps: dict[str, list[PolicyResource]] | None = None) -> PolicyResource:  # fmt: skip
    return PolicyResource(type_, unknown_checking_proxy(props), f"urn:{type_}::{name}", name, opts(protect), None,
                          None, [], deps or {})  # fmt: skip


def check(policy: Any, type_: str, props: dict[str, Any], config: dict[str, Any] | None = None,
          protect: bool = False) -> list[str]:  # fmt: skip
    violations: list[str] = []
    args = ResourceValidationArgs(type_, unknown_checking_proxy(props), "urn:x", "res", opts(protect), None, config)
    policy.validate(args, lambda message, urn=None: violations.append(message))
    return violations


def check_stack(policy: Any, resources: list[PolicyResource], config: dict[str, Any] | None = None) -> list[str]:
    violations: list[str] = []
    policy.validate(StackValidationArgs(resources, config), lambda message, urn=None: violations.append(message))
    return violations


PASSWORD = resource("random:index/randomPassword:RandomPassword", "pw", {"length": 32, "result": UNKNOWN_STRING_VALUE})


def postgres(command: list[str]) -> PolicyResource:
    return resource(
        policies.CONTAINER, "postgres",
        {"image": "postgres:16.4", "command": command, "envs": ["POSTGRES_PASSWORD_FILE=/etc/postgresql/pw"],
         "labels": [{"label": policies.COMPONENT_LABEL, "value": "postgres"}]},
    )  # fmt: skip


def role(name: str, limit: Any, login: bool = True, **flags: Any) -> PolicyResource:
    props = {"name": name, "login": login, "connectionLimit": limit, "password": UNKNOWN_STRING_VALUE, **flags}
    return resource(policies.ROLE, name, props, deps={"password": [PASSWORD]} if login else {})


SERVER = ["postgres", "-c", "max_connections=100", "-c", "superuser_reserved_connections=3"]


# --- the contract ------------------------------------------------------------------------------


def test_policy_names_and_levels_are_the_contract() -> None:
    assert [(p.name, p.enforcement_level.value if p.enforcement_level else None) for p in policies.POLICIES] == [
        ("connection-budget", "mandatory"),
        ("bounded-roles", "mandatory"),
        ("no-public-database-ports", "mandatory"),
        ("pinned-images", "mandatory"),
        ("protected-data", "advisory"),
        ("protected-databases", "mandatory"),
        ("secret-outputs", "mandatory"),
        ("role-memberships", "mandatory"),
        ("sql-steps", "mandatory"),
        ("host-network-listeners", "mandatory"),
        ("backups-configured", "mandatory"),
    ]


def test_importing_the_policies_starts_no_server() -> None:
    sys.modules.pop("policy.policies", None)
    module = importlib.import_module("policy.policies")  # would block forever if it built the PolicyPack
    assert len(module.POLICIES) == 11


# --- connection-budget -------------------------------------------------------------------------


def test_budget_fits() -> None:
    resources = [postgres(SERVER), role("a", 40), role("b", 40), role("owner", -1, login=False)]
    assert check_stack(policies.connection_budget, resources, {"adminHeadroom": 5, "externalRoles": {"x": 12}}) == []


def test_budget_exceeded_lists_each_role_and_share() -> None:
    resources = [postgres(SERVER), role("a", 40), role("b", 45)]
    (message,) = check_stack(policies.connection_budget, resources, {"adminHeadroom": 5, "externalRoles": {"x": 8}})
    assert "hold 98 > 97 usable (max_connections 100 - superuser_reserved_connections 3)" in message
    assert "a 40, b 45, x 8 (external), adminHeadroom 5" in message


def test_nologin_owners_with_minus_one_hold_no_slot() -> None:
    resources = [postgres(SERVER), role("a", 97), role("db_owner", -1, login=False)]
    assert check_stack(policies.connection_budget, resources, {}) == []


def test_unbounded_login_role_is_a_violation() -> None:
    (message,) = check_stack(policies.connection_budget, [postgres(SERVER), role("a", -1)], {})
    assert "without a connection limit" in message and "a" in message


def test_budget_reads_every_form_of_server_argument_and_postgres_defaults() -> None:
    command = ["postgres", "-c", "max_connections=50", "-csuperuser_reserved_connections=2", "--shared-buffers=1GB"]
    assert policies.server_settings(command) == {
        "max_connections": "50",
        "superuser_reserved_connections": "2",
        "shared_buffers": "1GB",
    }
    # No -c at all: Postgres' defaults, 100 and 3.
    assert len(check_stack(policies.connection_budget, [postgres(["postgres"]), role("a", 98)], {})) == 1
    assert check_stack(policies.connection_budget, [postgres(["postgres"]), role("a", 97)], {}) == []


def test_budget_decides_at_preview_because_its_inputs_are_literals() -> None:
    # Passwords, env and image IDs are unknown at preview; limits and -c arguments are literals.
    resources = [postgres(SERVER), role("a", 60), role("b", 60)]
    assert len(check_stack(policies.connection_budget, resources, {})) == 1
    # The trap it avoids: had a limit been computed, reading it would raise (and the SDK would
    # quietly downgrade the policy to advisory).
    with pytest.raises(UnknownValueError):
        check_stack(policies.connection_budget, [postgres(SERVER), role("a", UNKNOWN_NUMBER_VALUE)], {})


def test_budget_is_not_applicable_without_a_postgres_container() -> None:
    with pytest.raises(_NotApplicableError):
        check_stack(policies.connection_budget, [role("a", 5)], {})


# --- bounded-roles -----------------------------------------------------------------------------


def test_bounded_roles() -> None:
    ok = {"name": "app", "login": True, "connectionLimit": 5, "password": UNKNOWN_STRING_VALUE}
    assert check(policies.bounded_roles, policies.ROLE, ok) == []
    assert check(policies.bounded_roles, policies.ROLE, {"name": "o", "login": False, "connectionLimit": -1}) == []
    assert check(policies.bounded_roles, policies.ROLE, {"name": "app", "login": True}) == [
        "login role app must have connectionLimit >= 1, has -1"
    ]
    for flag in ("superuser", "createRole", "createDatabase", "bypassRowLevelSecurity"):
        assert check(policies.bounded_roles, policies.ROLE, {**ok, flag: True}) == [
            f"login role app must not have {flag}"
        ]
    assert len(check(policies.bounded_roles, policies.ROLE, {**ok, "replication": True})) == 1
    assert (
        check(policies.bounded_roles, policies.ROLE, {**ok, "replication": True}, {"replicationRoles": ["app"]}) == []
    )


# --- no-public-database-ports ------------------------------------------------------------------


def firewall(*rules: dict[str, Any]) -> list[str]:
    return check(policies.no_public_database_ports, policies.FIREWALL, {"rules": list(rules)})


def test_firewall_rules() -> None:
    public = ["0.0.0.0/0", "::/0"]
    assert firewall({"direction": "in", "protocol": "tcp", "port": "22", "sourceIps": public}) == []
    assert firewall({"direction": "in", "protocol": "tcp", "port": "5432", "sourceIps": ["203.0.113.10/32"]}) == []
    assert len(firewall({"direction": "in", "protocol": "tcp", "port": "5432", "sourceIps": ["0.0.0.0/0"]})) == 1
    found = firewall({"direction": "in", "protocol": "tcp", "port": "5000-7000", "sourceIps": ["::/0"]})
    assert [m.split(" to ")[0] for m in found] == ["firewall res opens port 5432", "firewall res opens port 6432"]
    # Counted as a union: two halves are all of IPv4, and two rules count together.
    halves = firewall({"direction": "in", "protocol": "tcp", "port": "5432", "sourceIps": ["0.0.0.0/1", "128.0.0.0/1"]})
    assert halves == ["firewall res opens port 5432 to more than a /16 of IPv4 (0.0.0.0/1, 128.0.0.0/1)"]
    split = firewall({"direction": "in", "protocol": "tcp", "port": "5432", "sourceIps": ["198.18.0.0/16"]},
                     {"direction": "in", "protocol": "tcp", "port": "5000-6000", "sourceIps": ["198.19.0.0/16"]})  # fmt: skip
    assert len(split) == 1
    # Both ports, both families.
    assert len(firewall({"direction": "in", "protocol": "tcp", "port": "any", "sourceIps": public})) == 4
    assert len(firewall({"direction": "in", "protocol": "tcp", "sourceIps": public})) == 4  # no port: all
    assert firewall({"direction": "in", "protocol": "tcp", "port": "6433-7000", "sourceIps": public}) == []
    assert firewall({"direction": "out", "protocol": "tcp", "port": "5432", "destinationIps": public}) == []
    assert firewall({"direction": "in", "protocol": "icmp", "sourceIps": public}) == []


def published(*ports: dict[str, Any]) -> list[str]:
    return check(policies.no_public_database_ports, policies.CONTAINER, {"image": "x:1", "ports": list(ports)})


def test_docker_publishing() -> None:
    assert published({"internal": 5432, "external": 5432, "ip": "127.0.0.1"}) == []
    assert published({"internal": 6432, "external": 6432, "ip": "10.0.1.10"}) == []
    (message,) = published({"internal": 5432, "external": 15432})  # Docker's default: every interface
    assert "0.0.0.0 (Docker default)" in message
    assert len(published({"internal": 6432, "external": 6432, "ip": "0.0.0.0"})) == 1
    assert len(published({"internal": 5432, "external": 5432, "ip": "::"})) == 1
    assert len(published({"internal": 5432, "external": 5432, "ip": "203.0.113.7"})) == 1
    assert published({"internal": 8080, "external": 8080}) == []


# --- pinned-images -----------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("image", "pinned"),
    [
        ("postgres:16.4-bookworm", True),
        ("postgres@sha256:" + "a" * 64, True),
        ("sha256:" + "b" * 64, True),
        ("registry.local:5000/postgres:16", True),
        ("postgres:latest", False),
        ("edoburu/pgbouncer", False),
        ("registry.local:5000/postgres", False),
    ],
)
def test_pinned_images(image: str, pinned: bool) -> None:
    for type_, key in ((policies.REMOTE_IMAGE, "name"), (policies.CONTAINER, "image")):
        assert (check(policies.pinned_images, type_, {key: image}) == []) is pinned


# --- protected-data ----------------------------------------------------------------------------


def test_protected_data() -> None:
    volume = policies.HCLOUD_VOLUME
    assert len(check(policies.protected_data, volume, {"size": 50})) == 2
    assert check(policies.protected_data, volume, {"size": 50, "deleteProtection": True}, protect=True) == []
    data = {"name": "pgdata", "labels": [{"label": policies.COMPONENT_LABEL, "value": "postgres-data"}]}
    assert len(check(policies.protected_data, policies.DOCKER_VOLUME, data)) == 1
    assert check(policies.protected_data, policies.DOCKER_VOLUME, data, protect=True) == []
    assert check(policies.protected_data, policies.DOCKER_VOLUME, {"name": "cache"}) == []


def test_protected_databases() -> None:
    for type_ in (policies.DATABASE, policies.SCHEMA):
        (violation,) = check(policies.protected_databases, type_, {"name": "fleet_platform"})
        assert "must be protected: an up would DROP it" in violation
        assert check(policies.protected_databases, type_, {"name": "fleet_platform"}, protect=True) == []
    assert check(policies.protected_databases, policies.ROLE, {"name": "app"}) == []


# --- secret-outputs ----------------------------------------------------------------------------


def test_passwords_must_be_generated_and_never_in_a_container_environment() -> None:
    files = resource("command:remote:Command", "postgres-config-write", {"stdin": UNKNOWN_STRING_VALUE},
                     deps={"stdin": [PASSWORD]})  # fmt: skip
    assert check_stack(policies.secret_outputs, [PASSWORD, role("a", 5), postgres(SERVER), files]) == []
    literal = resource(policies.ROLE, "a", {"name": "a", "login": True, "connectionLimit": 5, "password": "hunter2"})
    in_env = resource(policies.CONTAINER, "pg", {"image": "postgres:16", "envs": ["POSTGRES_PASSWORD=hunter2"],
                                                 "labels": [{"label": policies.COMPONENT_LABEL, "value": "postgres"}]})  # fmt: skip
    replica_env = resource(policies.CONTAINER, "r", {"envs": ["POSTGRES_PASSWORD=x"],
                           "labels": [{"label": policies.COMPONENT_LABEL, "value": "postgres-replica"}]})  # fmt: skip
    literal_files = resource("command:local:Command", "pgbouncer-config-write", {"stdin": "x 0600 aHVudGVyMg==\n"})
    violations = check_stack(policies.secret_outputs, [literal, in_env, replica_env, literal_files])
    assert len(violations) == 5, violations  # the literal role: not generated, and not a verifier
    assert any("POSTGRES_PASSWORD_FILE" in v for v in violations)


# --- over the real program ---------------------------------------------------------------------


def _config(stack: str) -> dict[str, Any]:
    return policy_config(load_stack_values(read_stack_values(stack_file(stack))))


@pytest.mark.parametrize("stack", STACKS)
def test_every_stack_passes_its_mandatory_policies_at_preview(stack: str) -> None:
    results = evaluate(run_of(stack), _config(stack))
    assert {r.name for r in results} == {p.name for p in policies.POLICIES}
    assert [r for r in results if r.enforcement == "mandatory" and r.violations] == []


def test_local_budget_policy_decides_on_the_declared_resources() -> None:
    (budget,) = [r for r in evaluate(run_of("local"), _config("local")) if r.name == "connection-budget"]
    assert budget.not_applicable is None and budget.violations == []
    config = _config("local")
    config["connection-budget"]["externalRoles"] = {"bi_tool": 40}  # 60 roles + 40 + 5 > 97
    (budget,) = [r for r in evaluate(run_of("local"), config) if r.name == "connection-budget"]
    assert len(budget.violations) == 1 and "bi_tool 40 (external)" in budget.violations[0]


def test_every_hetzner_stack_makes_protected_data_mandatory_whatever_its_name() -> None:
    assert _config("prod")["protected-data"] == {"enforcementLevel": "mandatory"}
    assert _config("staging")["protected-data"] == {"enforcementLevel": "mandatory"}
    assert _config("local")["protected-data"] == {"enforcementLevel": "advisory"}
    results = {r.name: r for r in evaluate(run_of("local"), _config("local"))}
    assert results["protected-data"].enforcement == "advisory" and results["protected-data"].violations


# --- the bypasses a hostile reviewer tried --------------------------------------------------------


def group(name: str) -> PolicyResource:
    return resource(policies.ROLE, name, {"name": name, "login": False, "connectionLimit": -1})


def member(name: str, *groups: str) -> PolicyResource:
    return resource(policies.ROLE, name, {"name": name, "login": True, "connectionLimit": 5, "roles": list(groups),
                                          "password": UNKNOWN_STRING_VALUE})  # fmt: skip


def test_memberships_only_in_declared_groups_never_postgres_or_pg_roles() -> None:
    assert check_stack(policies.role_memberships, [group("db_read"), member("app", "db_read")]) == []
    (superuser,) = check_stack(policies.role_memberships, [member("app", "postgres")])
    assert "must not be a member of postgres: superuser" in superuser
    grant = resource(policies.GRANT_ROLE, "g", {"role": "app", "grantRole": "pg_execute_server_program"})
    found = check_stack(policies.role_memberships, [member("app"), grant])
    assert any("pg_execute_server_program: superuser or predefined" in v for v in found)
    assert any("set its membership in its Role's `roles`" in v for v in found)
    (foreign,) = check_stack(policies.role_memberships, [member("app", "someone_elses_role")])
    assert "not a group role this stack declares" in foreign
    login_group = check_stack(policies.role_memberships, [member("other"), member("app", "other")])
    assert login_group and "not a group role" in login_group[0]  # a login role is no group


def test_only_the_programs_own_sql_steps_and_they_never_escalate() -> None:
    ok = {"sql": "ALTER FUNCTION x SET search_path = pg_catalog;\nREVOKE INSERT ON t FROM g;", "check": "SELECT true"}
    assert check(policies.sql_steps, "pulumi-python:dynamic/postgres-platform:SqlApply", ok) == []
    (foreign,) = check(policies.sql_steps, "pulumi-python:dynamic:Resource", {"sql": "SELECT 1"})
    assert "is not one of the program's SQL steps" in foreign
    bad = {"sql": "CREATE ROLE sneaky LOGIN SUPERUSER PASSWORD 'x';", "check": "SELECT true"}
    (escalating,) = check(policies.sql_steps, "pulumi-python:dynamic/postgres-platform:SqlApply", bad)
    assert "'CREATE ROLE'" in escalating
    retire = {"statements": {"db": "GRANT postgres TO app;"}}
    assert check(policies.sql_steps, "pulumi-python:dynamic/postgres-platform:RoleRetirement", retire)


def test_a_host_network_postgres_on_every_interface_needs_a_firewall() -> None:
    server = resource(policies.CONTAINER, "pg", {"networkMode": "host", "image": "postgres:16.4",
                      "command": ["postgres", "-c", "listen_addresses=*"],
                      "labels": [{"label": policies.COMPONENT_LABEL, "value": "postgres"}]})  # fmt: skip
    (alone,) = check_stack(policies.host_network_listeners, [server])
    assert "listens on every interface ('*') with no firewall declared" in alone
    wall = resource(policies.FIREWALL, "fw", {"rules": []})
    assert check_stack(policies.host_network_listeners, [server, wall]) == []
    narrow = resource(policies.CONTAINER, "pg2", {"networkMode": "host", "image": "postgres:16.4",
                      "command": ["postgres", "-c", "listen_addresses=10.0.1.10,localhost"],
                      "labels": [{"label": policies.COMPONENT_LABEL, "value": "postgres"}]})  # fmt: skip
    assert check_stack(policies.host_network_listeners, [narrow]) == []


@pytest.mark.parametrize(
    ("image", "problem"),
    [
        ("edoburu/pgbouncer:v1.25.2-p0", None),
        ("edoburu/pgbouncer:v1.26.0", None),
        ("edoburu/pgbouncer:v1.25.2-p0@sha256:" + "c" * 64, None),
        ("edoburu/pgbouncer:v1.23.1-p3", "PgBouncer 1.23.1 is older than 1.25.2 and no Debian build with its fixes"),
        # Debian 13's builds: deb13u2 carries every fix through 1.25.2 (changelog.Debian), deb13u1 lacks 2026-6664.
        ("postgres-platform/pgbouncer:1.24.1-deb13u2", None),
        ("postgres-platform/pgbouncer:1.24.1-deb13u3", None),
        ("postgres-platform/pgbouncer:1.24.1-deb13u1", "PgBouncer 1.24.1-deb13u1 is older than 1.25.2"),
        ("postgres-platform/pgbouncer:1.24.0-deb13u2", "PgBouncer 1.24.0-deb13u2 is older"),
        ("postgres-platform/pgbouncer:1.24.1-deb12u2", "CVE-2026-6664"),
        ("edoburu/pgbouncer:1.25.1", "CVE-2026-6664"),
        ("edoburu/pgbouncer@sha256:" + "d" * 64, "its tag shows no PgBouncer version"),
    ],
)
def test_pgbouncer_images_carry_the_cve_fixes(image: str, problem: str | None) -> None:
    found = check(policies.pinned_images, policies.REMOTE_IMAGE, {"name": image})
    if problem is None:
        assert found == []
    else:
        (message,) = found
        assert problem in message
    assert check(policies.pinned_images, policies.REMOTE_IMAGE, {"name": "postgres:16.4-bookworm"}) == []


def test_a_literal_swapped_in_behind_a_generated_password_is_caught_at_up() -> None:
    def role_with(password: str) -> PolicyResource:
        props = {"name": "app", "login": True, "connectionLimit": 5, "password": password}
        return resource(policies.ROLE, "app", props, deps={"password": [PASSWORD]})

    (swapped,) = check_stack(policies.secret_outputs, [PASSWORD, role_with("hunter2")])
    assert "its password is not a SCRAM verifier" in swapped
    verifier = "SCRAM-SHA-256$4096:c2FsdA==$a2V5:c2VydmVy"
    assert check_stack(policies.secret_outputs, [PASSWORD, role_with(verifier)]) == []
    assert check_stack(policies.secret_outputs, [PASSWORD, role_with(UNKNOWN_STRING_VALUE)]) == []  # at preview
