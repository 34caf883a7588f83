"""Target existing under mocks: what the program declares for a server it did not build, and what it refuses."""

from __future__ import annotations

import copy
from typing import Any

import pytest

from postgres_platform.model import access
from postgres_platform.model.config import ConfigError
from postgres_platform.model.images import POSTGRES_17
from postgres_platform.model.load import load_stack_values, parse
from postgres_platform.model.stackfile import read_stack_values, stack_file
from postgres_platform.offline.policies import evaluate
from postgres_platform.offline.policy_config import policy_config
from postgres_platform.offline.program import run_program
from postgres_platform.render import sql
from tests.helpers import run_of

LEGACY_VALUES = read_stack_values(stack_file("legacy"))
PREFIX = "postgres-platform:"


def legacy_raw() -> dict[str, Any]:
    """The legacy stack's namespace values as parse() takes them."""
    config = load_stack_values(LEGACY_VALUES)
    raw: dict[str, Any] = config.model_dump(by_alias=True, exclude_none=True)
    return raw


def with_values(**changes: Any) -> dict[str, Any]:
    values = copy.deepcopy(LEGACY_VALUES)
    for key, value in changes.items():
        values[PREFIX + key] = value
    return values


def test_databases_and_schemas_are_imported_protected_and_retained_with_their_owners_kept() -> None:
    run = run_of("legacy")
    databases = run.of_type("postgresql:index/database:Database")
    assert {d.import_id for d in databases} == {"tracksolid_db", "fleet_platform"}
    schemas = run.of_type("postgresql:index/schema:Schema")
    assert {s.import_id for s in schemas} == {
        "tracksolid_db.tracksolid",
        "tracksolid_db.reporting",
        "fleet_platform.public",
    }
    for adopted in [*databases, *schemas]:
        assert adopted.protect and adopted.retain_on_delete, adopted.name
        assert "owner" in adopted.ignore_changes and "owner" not in adopted.inputs, adopted.name


def test_nothing_of_the_server_itself_is_declared_and_the_provider_is_the_named_admin() -> None:
    run = run_of("legacy")
    assert not [r for r in run.resources if r.type.startswith(("docker:", "hcloud:", "command:"))]
    (provider,) = run.of_type("pulumi:providers:postgresql")
    assert (provider.inputs["host"], provider.inputs["username"], provider.inputs["sslmode"]) == (
        "10.0.1.4",
        "postgres",
        "require",
    )
    assert provider.inputs["superuser"] in (True, "true") and "password" in provider.secret_inputs
    assert run.outputs["hosts"] == {"postgres": "10.0.1.4:5432"} and "pgbouncerAdminDsn" not in run.outputs


def test_no_pgbouncer_means_no_auth_role_no_lookup_function_and_no_public_revokes() -> None:
    plan = access.plan(load_stack_values(LEGACY_VALUES))
    assert "pgbouncer_auth" not in {r.name for r in plan.logins}
    assert not [g for g in plan.grants if g.role in ("public", "pgbouncer_auth")]
    script = sql.render_script(plan)
    assert "get_auth" not in script and "CREATE DATABASE" not in script and "CREATE SCHEMA" not in script


def test_the_ownership_step_moves_app_schemas_of_databases_with_a_migrate_app_and_keeps_the_named_object() -> None:
    run = run_of("legacy")
    steps = {
        r.inputs["database"]: r.inputs
        for r in run.of_type("pulumi-python:dynamic/postgres-platform:SqlApply")
        if r.name.endswith("-ownership")
    }
    assert set(steps) == {"tracksolid_db", "fleet_platform"}  # ingest_app and gateway_app migrate
    assert "'reporting.v_trips'" in steps["tracksolid_db"]["sql"]
    assert "OWNER TO %I" in steps["fleet_platform"]["sql"] and "tracksolid" not in steps["fleet_platform"]["sql"]
    plan = access.plan(load_stack_values(LEGACY_VALUES))
    assert [m.database for m in plan.ownership] == ["tracksolid_db", "fleet_platform"]
    # New tables of today's creator (postgres, the admin) get the groups' grants too.
    assert {d.owner for d in plan.default_privileges} == {"tracksolid_db_owner", "fleet_platform_owner", "postgres"}


def test_a_pgbouncer_runs_on_the_named_docker_host_over_ssh() -> None:
    values = with_values(
        pgbouncer='{"image": "edoburu/pgbouncer:v1.25.2-p0", "defaultPoolSize": 5}',
        existing='{"host": "10.0.1.4", "sslmode": "require", "pgbouncerHost": '
        '{"dockerHost": "ssh://deploy@10.0.1.4", "address": "10.0.1.4"}}',
    )
    run = run_program("legacy", values)
    (container,) = run.of_type("docker:index/container:Container")
    assert container.inputs["networkMode"] == "host" and container.name == "pgbouncer-container"
    docker_providers = run.of_type("pulumi:providers:docker")
    assert [p.inputs["host"] for p in docker_providers] == ["ssh://deploy@10.0.1.4"]
    (write,) = run.of_type("command:remote:Command")
    assert (
        write.inputs["connection"]["user"] == "deploy" and "/etc/postgres-platform/pgbouncer" in write.inputs["create"]
    )
    assert run.outputs["hosts"]["pgbouncer"] == "10.0.1.4:6432"
    assert "pgbouncer_auth" in {r.inputs["name"] for r in run.of_type("postgresql:index/role:Role")}


def test_a_managed_admin_is_no_superuser_for_the_provider_and_the_sql() -> None:
    values = with_values(existing='{"host": "db.example.com", "adminUser": "app_owner", "adminSuperuser": false}')
    run = run_program("legacy", values)
    (provider,) = run.of_type("pulumi:providers:postgresql")
    assert provider.inputs["superuser"] in (False, "false") and provider.inputs["username"] == "app_owner"
    plan = access.plan(load_stack_values(values))
    script = sql.render_script(plan)
    assert "NOSUPERUSER" not in script and 'GRANT "tracksolid_db_owner" TO CURRENT_USER;' in script
    assert {d.owner for d in plan.default_privileges} >= {"app_owner"}


def test_the_admin_password_is_required_secret_config() -> None:
    with pytest.raises(ConfigError, match="existingAdminPassword: is required for target existing"):
        load_stack_values(LEGACY_VALUES, secret_keys=[])
    with pytest.raises(ConfigError, match="existingAdminPassword: must be set with `pulumi config set --secret`"):
        load_stack_values({**LEGACY_VALUES, f"{PREFIX}existingAdminPassword": "plain"}, secret_keys=[])


@pytest.mark.parametrize(
    ("change", "expected"),
    [
        ({"postgres": {"image": POSTGRES_17.reference}}, "postgres.image: must be absent for target existing"),
        ({"postgres": {"settings": {"work_mem": "8MB"}}}, "postgres.settings: must be absent for target existing"),
        ({"backup": {"repo": "posix"}}, "backup: must be absent for target existing"),
        ({"pgbouncer": {"image": "edoburu/pgbouncer:v1.25.2-p0"}}, "existing.pgbouncerHost: is required"),
        (
            {
                "existing": {"adminSuperuser": False, "pgbouncerHost": {"dockerHost": "local", "address": "10.0.0.1"}},
                "pgbouncer": {"image": "edoburu/pgbouncer:v1.25.2-p0"},
            },
            "pgbouncer: needs existing.adminSuperuser",
        ),
        ({"apps": {"cron_app": {"pooled": True}}}, "apps.cron_app.pooled: must be false without a pgbouncer section"),
        ({"existing": {"keepOwners": ["reporting.v_trips"]}}, "existing.keepOwners[0]: must be database.schema.object"),
        ({"existing": {"keepOwners": ["tracksolid_db.public.x"]}}, "existing.keepOwners[0]: names no declared"),
        ({"existing": {"sslmode": "verify"}}, "existing.sslmode: must be"),
        ({"databases": {"tracksolid_db": {"schemas": ["_timescaledb_catalog"]}}}, "databases.tracksolid_db.schemas[0]"),
    ],
)
def test_bad_adoption_config_gets_one_line_naming_key_and_value(change: dict[str, Any], expected: str) -> None:
    raw = legacy_raw()

    def merge(into: dict[str, Any], patch: dict[str, Any]) -> None:
        for key, value in patch.items():
            if isinstance(value, dict) and isinstance(into.get(key), dict):
                merge(into[key], value)
            else:
                into[key] = value

    merge(raw, change)
    with pytest.raises(ConfigError) as caught:
        parse(raw)
    assert [line for line in caught.value.lines if line.startswith(expected)], caught.value.lines


def test_a_built_target_still_requires_image_and_pgbouncer() -> None:
    raw = legacy_raw()
    raw["target"] = "local"
    del raw["existing"]
    with pytest.raises(ConfigError) as caught:
        parse(raw)
    assert "postgres.image: is required when target is local, got null" in caught.value.lines
    assert "pgbouncer: is required when target is local, got null" in caught.value.lines


def test_the_connection_budget_policy_checks_the_adopted_server_as_the_stack_describes_it() -> None:
    run, config = run_of("legacy"), load_stack_values(LEGACY_VALUES)
    pack = policy_config(config)
    (result,) = [r for r in evaluate(run, pack) if r.name == "connection-budget"]
    assert result.not_applicable is None and result.violations == []
    pack["connection-budget"]["adoptedServer"]["max_connections"] = 80  # 83 declared (2 monitoring) + 5 headroom > 77
    (result,) = [r for r in evaluate(run, pack) if r.name == "connection-budget"]
    assert [v for v in result.violations if v.startswith("adopted server existing: roles and headroom hold 88 > 77")]
