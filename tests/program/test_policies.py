"""The policy pack, called directly with args shaped as the engine sends them (camelCase, proxied)."""

from __future__ import annotations

import ast
import importlib
import re
import sys
from pathlib import Path
from typing import Any

import pytest
from pulumi_policy import PolicyResource
from pulumi_policy.policy import _NotApplicableError
from pulumi_policy.proxy import UNKNOWN_NUMBER_VALUE, UNKNOWN_STRING_VALUE, UnknownValueError

from policy import budget, data, images, network, passwords, policies, sql
from policy.resources import (
    BACKUPS,
    COMMANDS,
    CONFIG_FILES,
    CONTAINER,
    DATABASE,
    DOCKER_VOLUME,
    FIREWALL,
    GRANT_ROLE,
    HCLOUD_VOLUME,
    RANDOM_PASSWORD,
    REMOTE_IMAGE,
    ROLE,
    ROLE_RETIREMENT,
    SCHEMA,
    SQL_APPLY,
    is_command_of,
    server_settings,
)
from postgres_platform.model.load import load_stack_values
from postgres_platform.model.names import COMPONENT_LABEL, DATA_VOLUME, PRIMARY, REPLICA
from postgres_platform.model.stackfile import read_stack_values, stack_file
from postgres_platform.offline.policies import evaluate, policy_resources
from postgres_platform.offline.policy_config import policy_config
from tests.helpers import BUILT_STACKS, STACKS, run_of
from tests.program.policy_helpers import check, check_stack, resource

PASSWORD = resource(RANDOM_PASSWORD, "pw", {"length": 32, "result": UNKNOWN_STRING_VALUE})


def postgres(command: list[str]) -> PolicyResource:
    return resource(
        CONTAINER,
        "postgres",
        {
            "image": "postgres:16.4",
            "command": command,
            "envs": ["POSTGRES_PASSWORD_FILE=/etc/postgresql/pw"],
            "labels": [{"label": COMPONENT_LABEL, "value": PRIMARY}],
        },
    )


def role(name: str, limit: Any, login: bool = True, **flags: Any) -> PolicyResource:
    props = {"name": name, "login": login, "connectionLimit": limit, "password": UNKNOWN_STRING_VALUE, **flags}
    return resource(ROLE, name, props, deps={"password": [PASSWORD]} if login else {})


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


def test_every_policy_says_what_it_checks_and_how_to_fix_it() -> None:
    for policy in policies.POLICIES:
        assert policy.description.strip() and (policy.remediation_steps or "").strip(), policy.name


POLICY_DIR = Path(policies.__file__).parent
# A type token: docker:index/container:Container, command:local:Command, postgres-platform:index:Backups.
TYPE_TOKEN = re.compile(r"^[a-z][\w-]*:[\w/.-]*:[A-Za-z]\w*$")


def type_tokens(module: Path) -> set[str]:
    strings = {n.value for n in ast.walk(ast.parse(module.read_text())) if isinstance(n, ast.Constant)}
    return {t for t in strings if isinstance(t, str) and (":index/" in t or TYPE_TOKEN.match(t))}


def test_only_the_resources_module_spells_a_resource_type() -> None:
    assert {CONTAINER, COMMANDS[0], SQL_APPLY, CONFIG_FILES} <= type_tokens(POLICY_DIR / "resources.py")  # it sees them
    for module in sorted(POLICY_DIR.glob("*.py")):
        if module.name != "resources.py":
            assert type_tokens(module) == set(), module.name


# --- connection-budget -------------------------------------------------------------------------


def test_budget_fits() -> None:
    resources = [postgres(SERVER), role("a", 40), role("b", 40), role("owner", -1, login=False)]
    assert check_stack(budget.connection_budget, resources, {"adminHeadroom": 5, "externalRoles": {"x": 12}}) == []


def test_budget_exceeded_lists_each_role_and_share() -> None:
    resources = [postgres(SERVER), role("a", 40), role("b", 45)]
    (message,) = check_stack(budget.connection_budget, resources, {"adminHeadroom": 5, "externalRoles": {"x": 8}})
    assert "hold 98 > 97 usable (max_connections 100 - superuser_reserved_connections 3)" in message
    assert "a 40, b 45, x 8 (external), adminHeadroom 5" in message


def test_nologin_owners_with_minus_one_hold_no_slot() -> None:
    resources = [postgres(SERVER), role("a", 97), role("db_owner", -1, login=False)]
    assert check_stack(budget.connection_budget, resources, {}) == []


def test_unbounded_login_role_is_a_violation() -> None:
    (message,) = check_stack(budget.connection_budget, [postgres(SERVER), role("a", -1)], {})
    assert "without a connection limit" in message and "a" in message


def test_budget_reads_every_form_of_server_argument_and_postgres_defaults() -> None:
    command = ["postgres", "-c", "max_connections=50", "-csuperuser_reserved_connections=2", "--shared-buffers=1GB"]
    assert server_settings(command) == {
        "max_connections": "50",
        "superuser_reserved_connections": "2",
        "shared_buffers": "1GB",
    }
    # No -c at all: Postgres' defaults, 100 and 3.
    assert len(check_stack(budget.connection_budget, [postgres(["postgres"]), role("a", 98)], {})) == 1
    assert check_stack(budget.connection_budget, [postgres(["postgres"]), role("a", 97)], {}) == []


def test_budget_decides_at_preview_because_its_inputs_are_literals() -> None:
    # Passwords, env and image IDs are unknown at preview; limits and -c arguments are literals.
    resources = [postgres(SERVER), role("a", 60), role("b", 60)]
    assert len(check_stack(budget.connection_budget, resources, {})) == 1
    # The trap it avoids: had a limit been computed, reading it would raise (and the SDK would
    # quietly downgrade the policy to advisory).
    with pytest.raises(UnknownValueError):
        check_stack(budget.connection_budget, [postgres(SERVER), role("a", UNKNOWN_NUMBER_VALUE)], {})


def test_budget_is_not_applicable_without_a_postgres_container() -> None:
    with pytest.raises(_NotApplicableError):
        check_stack(budget.connection_budget, [role("a", 5)], {})


# --- bounded-roles -----------------------------------------------------------------------------


def test_bounded_roles() -> None:
    ok = {"name": "app", "login": True, "connectionLimit": 5, "password": UNKNOWN_STRING_VALUE}
    assert check(budget.bounded_roles, ROLE, ok) == []
    assert check(budget.bounded_roles, ROLE, {"name": "o", "login": False, "connectionLimit": -1}) == []
    assert check(budget.bounded_roles, ROLE, {"name": "app", "login": True}) == [
        "login role app must have connectionLimit >= 1, has -1"
    ]
    for flag in ("superuser", "createRole", "createDatabase", "bypassRowLevelSecurity"):
        assert check(budget.bounded_roles, ROLE, {**ok, flag: True}) == [f"login role app must not have {flag}"]
    assert len(check(budget.bounded_roles, ROLE, {**ok, "replication": True})) == 1
    assert check(budget.bounded_roles, ROLE, {**ok, "replication": True}, {"replicationRoles": ["app"]}) == []


# --- no-public-database-ports ------------------------------------------------------------------


def firewall(*rules: dict[str, Any]) -> list[str]:
    return check(network.no_public_database_ports, FIREWALL, {"rules": list(rules)})


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
    split = firewall(
        {"direction": "in", "protocol": "tcp", "port": "5432", "sourceIps": ["198.18.0.0/16"]},
        {"direction": "in", "protocol": "tcp", "port": "5000-6000", "sourceIps": ["198.19.0.0/16"]},
    )
    assert len(split) == 1
    # Both ports, both families.
    assert len(firewall({"direction": "in", "protocol": "tcp", "port": "any", "sourceIps": public})) == 4
    assert len(firewall({"direction": "in", "protocol": "tcp", "sourceIps": public})) == 4  # no port: all
    assert firewall({"direction": "in", "protocol": "tcp", "port": "6433-7000", "sourceIps": public}) == []
    assert firewall({"direction": "out", "protocol": "tcp", "port": "5432", "destinationIps": public}) == []
    assert firewall({"direction": "in", "protocol": "icmp", "sourceIps": public}) == []


def published(*ports: dict[str, Any]) -> list[str]:
    return check(network.no_public_database_ports, CONTAINER, {"image": "x:1", "ports": list(ports)})


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
    for type_, key in ((REMOTE_IMAGE, "name"), (CONTAINER, "image")):
        assert (check(images.pinned_images, type_, {key: image}) == []) is pinned


# --- protected-data ----------------------------------------------------------------------------


def test_protected_data() -> None:
    volume = HCLOUD_VOLUME
    assert len(check(data.protected_data, volume, {"size": 50})) == 2
    assert check(data.protected_data, volume, {"size": 50, "deleteProtection": True}, protect=True) == []
    pgdata = {"name": "pgdata", "labels": [{"label": COMPONENT_LABEL, "value": DATA_VOLUME}]}
    assert len(check(data.protected_data, DOCKER_VOLUME, pgdata)) == 1
    assert check(data.protected_data, DOCKER_VOLUME, pgdata, protect=True) == []
    assert check(data.protected_data, DOCKER_VOLUME, {"name": "cache"}) == []


def test_protected_databases() -> None:
    for type_ in (DATABASE, SCHEMA):
        (violation,) = check(data.protected_databases, type_, {"name": "fleet_platform"})
        assert "must be protected: an up would DROP it" in violation
        assert check(data.protected_databases, type_, {"name": "fleet_platform"}, protect=True) == []
    assert check(data.protected_databases, ROLE, {"name": "app"}) == []


# --- secret-outputs ----------------------------------------------------------------------------


def test_passwords_must_be_generated_and_never_in_a_container_environment() -> None:
    files = resource(
        "command:remote:Command",
        "postgres-config-write",
        {"stdin": UNKNOWN_STRING_VALUE},
        deps={"stdin": [PASSWORD]},
        parent=CONFIG_FILES,
    )
    assert check_stack(passwords.secret_outputs, [PASSWORD, role("a", 5), postgres(SERVER), files]) == []
    literal = resource(ROLE, "a", {"name": "a", "login": True, "connectionLimit": 5, "password": "hunter2"})
    in_env = resource(
        CONTAINER,
        "pg",
        {
            "image": "postgres:16",
            "envs": ["POSTGRES_PASSWORD=hunter2"],
            "labels": [{"label": COMPONENT_LABEL, "value": PRIMARY}],
        },
    )
    replica_env = resource(
        CONTAINER, "r", {"envs": ["POSTGRES_PASSWORD=x"], "labels": [{"label": COMPONENT_LABEL, "value": REPLICA}]}
    )
    literal_files = resource(
        "command:local:Command", "pgbouncer-config-write", {"stdin": "x 0600 aHVudGVyMg==\n"}, parent=CONFIG_FILES
    )
    violations = check_stack(passwords.secret_outputs, [literal, in_env, replica_env, literal_files])
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


@pytest.mark.parametrize("stack", BUILT_STACKS)
def test_the_policies_find_the_programs_config_files_and_backups_by_their_component(stack: str) -> None:
    run = run_of(stack)
    declared = policy_resources(run)
    writes = {r.name for r in run.resources if r.type in COMMANDS and r.name.endswith("-config-write")}
    assert writes and {r.name for r in declared if is_command_of(r, CONFIG_FILES)} == writes
    backups = {r.name for r in declared if is_command_of(r, BACKUPS)}
    assert backups == {
        r.name for r in run.resources if r.name in ("backups-stanza", "backups-timers", "backups-verify")
    }


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
    return resource(ROLE, name, {"name": name, "login": False, "connectionLimit": -1})


def member(name: str, *groups: str) -> PolicyResource:
    return resource(
        ROLE,
        name,
        {"name": name, "login": True, "connectionLimit": 5, "roles": list(groups), "password": UNKNOWN_STRING_VALUE},
    )


def test_memberships_only_in_declared_groups_never_postgres_or_pg_roles() -> None:
    assert check_stack(budget.role_memberships, [group("db_read"), member("app", "db_read")]) == []
    (superuser,) = check_stack(budget.role_memberships, [member("app", "postgres")])
    assert "must not be a member of postgres: superuser" in superuser
    grant = resource(GRANT_ROLE, "g", {"role": "app", "grantRole": "pg_execute_server_program"})
    found = check_stack(budget.role_memberships, [member("app"), grant])
    assert any("pg_execute_server_program: superuser or predefined" in v for v in found)
    assert any("set its membership in its Role's `roles`" in v for v in found)
    (foreign,) = check_stack(budget.role_memberships, [member("app", "someone_elses_role")])
    assert "not a group role this stack declares" in foreign
    login_group = check_stack(budget.role_memberships, [member("other"), member("app", "other")])
    assert login_group and "not a group role" in login_group[0]  # a login role is no group


def test_only_the_programs_own_sql_steps_and_they_never_escalate() -> None:
    ok = {"sql": "ALTER FUNCTION x SET search_path = pg_catalog;\nREVOKE INSERT ON t FROM g;", "check": "SELECT true"}
    assert check(sql.sql_steps, SQL_APPLY, ok) == []
    (foreign,) = check(sql.sql_steps, "pulumi-python:dynamic:Resource", {"sql": "SELECT 1"})
    assert "is not one of the program's SQL steps" in foreign
    bad = {"sql": "CREATE ROLE sneaky LOGIN SUPERUSER PASSWORD 'x';", "check": "SELECT true"}
    (escalating,) = check(sql.sql_steps, SQL_APPLY, bad)
    assert "'CREATE ROLE'" in escalating
    retire = {"statements": {"db": "GRANT postgres TO app;"}}
    assert check(sql.sql_steps, ROLE_RETIREMENT, retire)


def test_a_host_network_postgres_on_every_interface_needs_a_firewall() -> None:
    server = resource(
        CONTAINER,
        "pg",
        {
            "networkMode": "host",
            "image": "postgres:16.4",
            "command": ["postgres", "-c", "listen_addresses=*"],
            "labels": [{"label": COMPONENT_LABEL, "value": PRIMARY}],
        },
    )
    (alone,) = check_stack(network.host_network_listeners, [server])
    assert "listens on every interface ('*') with no firewall declared" in alone
    wall = resource(FIREWALL, "fw", {"rules": []})
    assert check_stack(network.host_network_listeners, [server, wall]) == []
    narrow = resource(
        CONTAINER,
        "pg2",
        {
            "networkMode": "host",
            "image": "postgres:16.4",
            "command": ["postgres", "-c", "listen_addresses=10.0.1.10,localhost"],
            "labels": [{"label": COMPONENT_LABEL, "value": PRIMARY}],
        },
    )
    assert check_stack(network.host_network_listeners, [narrow]) == []


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
    found = check(images.pinned_images, REMOTE_IMAGE, {"name": image})
    if problem is None:
        assert found == []
    else:
        (message,) = found
        assert problem in message
    assert check(images.pinned_images, REMOTE_IMAGE, {"name": "postgres:16.4-bookworm"}) == []


def test_a_literal_swapped_in_behind_a_generated_password_is_caught_at_up() -> None:
    def role_with(password: str) -> PolicyResource:
        props = {"name": "app", "login": True, "connectionLimit": 5, "password": password}
        return resource(ROLE, "app", props, deps={"password": [PASSWORD]})

    (swapped,) = check_stack(passwords.secret_outputs, [PASSWORD, role_with("hunter2")])
    assert "its password is not a SCRAM verifier" in swapped
    verifier = "SCRAM-SHA-256$4096:c2FsdA==$a2V5:c2VydmVy"
    assert check_stack(passwords.secret_outputs, [PASSWORD, role_with(verifier)]) == []
    assert check_stack(passwords.secret_outputs, [PASSWORD, role_with(UNKNOWN_STRING_VALUE)]) == []  # at preview


def _exporter(name: str, command: list[str], network_mode: str = "host") -> PolicyResource:
    return resource(
        CONTAINER,
        name,
        {
            "networkMode": network_mode,
            "image": "postgres-platform/postgres-exporter:0.17.1-deb13",
            "command": command,
            "labels": [{"label": COMPONENT_LABEL, "value": "postgres-exporter"}],
        },
    )


def test_a_host_network_exporter_listens_on_a_private_or_loopback_address_only() -> None:
    wall = resource(FIREWALL, "fw", {"rules": []})  # a firewall does not excuse it: the exporters have no login
    every = _exporter("open", ["--web.listen-address=0.0.0.0:9187"])
    (found,) = check_stack(network.host_network_listeners, [every, wall])
    assert "container open (postgres-exporter) listens on '0.0.0.0'" in found
    (default,) = check_stack(network.host_network_listeners, [_exporter("bare", ["--extend.query-path=/q.yml"])])
    assert "listens on every interface (no --web.listen-address)" in default
    (public,) = check_stack(
        network.host_network_listeners, [_exporter("pub", ["--web.listen-address=198.51.100.7:9187"])]
    )
    assert "'198.51.100.7'" in public
    private = _exporter("private", ["--web.listen-address=10.0.1.10:9187"])
    loopback = _exporter("lo", ["--web.listen-address=127.0.0.1:9187"])
    bridged = _exporter("bridge", ["--web.listen-address=0.0.0.0:9187"], network_mode="bridge")  # published on lo
    assert check_stack(network.host_network_listeners, [private, loopback, bridged]) == []


def test_the_hetzner_stacks_monitoring_containers_pass_the_listener_policy() -> None:
    run = run_of("prod")
    declared = policy_resources(run)
    monitoring = [r for r in declared if r.resource_type == CONTAINER and "exporter" in r.name]
    assert {r.name for r in monitoring} == {
        "monitoring-primary-postgres-exporter-container",
        "monitoring-primary-pgbouncer-exporter-container",
        "monitoring-replica-postgres-exporter-container",
    }
    assert check_stack(network.host_network_listeners, declared) == []
    # The same containers listening on every interface would not pass.
    opened = [resource(CONTAINER, r.name, {**r.props, "command": ["--web.listen-address=:9187"]}) for r in monitoring]
    assert len(check_stack(network.host_network_listeners, opened)) == 3


def test_a_monitoring_container_publishes_every_port_on_loopback_or_private_only() -> None:
    def published(ip: str | None, label: str = "postgres-exporter") -> dict[str, Any]:
        binding = {"internal": 9187, "external": 9187, **({"ip": ip} if ip else {})}
        return {"image": "x:1", "ports": [binding], "labels": [{"label": COMPONENT_LABEL, "value": label}]}

    assert check(network.no_public_database_ports, CONTAINER, published("127.0.0.1")) == []
    (everywhere,) = check(network.no_public_database_ports, CONTAINER, published(None))
    assert "publishes 9187 on 0.0.0.0 (Docker default)" in everywhere
    assert check(network.no_public_database_ports, CONTAINER, published("198.51.100.7", "prometheus"))
    # Any other container's non-database port is not this policy's business.
    assert check(network.no_public_database_ports, CONTAINER, published(None, "something-else")) == []
