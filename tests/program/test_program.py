"""The real __main__ under Pulumi mocks, once per Pulumi.<stack>.yaml: what it declares and exports."""

from __future__ import annotations

import json
from typing import Any

import pytest

from postgres_platform.model import access
from postgres_platform.model.images import DEFAULT_BASE, PGBOUNCER_124, POSTGRES_17
from postgres_platform.model.load import load_stack_values
from postgres_platform.model.stackfile import ROOT, read_stack_values, stack_file
from postgres_platform.offline.program import ProgramRun, RecordingMocks, fake_secret, run_program
from postgres_platform.program.deploy import StackConfigError
from postgres_platform.render.scram import stable_verifier
from tests.helpers import config_files, run_of

ROLE = "postgresql:index/role:Role"
GRANT = "postgresql:index/grant:Grant"
DEFAULTS = "postgresql:index/defaultPrivileges:DefaultPrivileges"
CONTAINER = "docker:index/container:Container"


def config_of(run: ProgramRun) -> Any:
    return load_stack_values(read_stack_values(stack_file(run.stack)))


def roles(run: ProgramRun) -> dict[str, dict[str, Any]]:
    return {r.inputs["name"]: r.inputs for r in run.of_type(ROLE)}


def test_exact_role_set_and_limits(stack_run: ProgramRun) -> None:
    config = config_of(stack_run)
    expected = {app: spec.connection_limit for app, spec in config.apps.items()}
    if config.pgbouncer is not None:
        expected["pgbouncer_auth"] = config.auth_role_limit()
    if config.hetzner and config.hetzner.replicas:
        expected["replicator"] = 2  # walsenders: not in the connection budget
    expected["pgplatform_monitor"] = 2  # the exporters' role, counted in the budget
    declared = roles(stack_run)
    assert declared["pgplatform_monitor"]["roles"] == ["pg_monitor"]
    assert {n: r["connectionLimit"] for n, r in declared.items() if r["login"]} == expected
    nologin = {n for n, r in declared.items() if not r["login"]}
    plan = access.plan(config)
    assert nologin == {r.name for r in (*plan.owners, *plan.groups)}
    assert {f"{db}_owner" for db in config.databases} | {f"{db}_read" for db in config.databases} <= nologin
    assert all(declared[o]["connectionLimit"] == -1 for o in nologin)


def test_login_roles_are_bounded_and_unprivileged(stack_run: ProgramRun) -> None:
    secret = {r.inputs["name"]: r.secret_inputs for r in stack_run.of_type(ROLE)}
    for name, role in roles(stack_run).items():
        for flag in ("superuser", "createDatabase", "createRole", "bypassRowLevelSecurity"):
            assert role[flag] is False, f"{name}.{flag}"
        assert role["replication"] is (name == "replicator"), name
        if role["login"]:
            assert role["connectionLimit"] >= 1
            generator = "replica-replication-password" if name == "replicator" else f"access-{name}-password"
            # The role gets the password's SCRAM verifier (stable salt), from the RandomPassword.
            assert role["password"] == stable_verifier(name, fake_secret(generator))
            assert "password" in secret[name]


def test_timeouts_reach_the_roles() -> None:
    prod = roles(run_of("prod"))
    assert prod["cron_app"]["statementTimeout"] == 300000
    assert prod["worker_app"]["idleInTransactionSessionTimeout"] == 60000
    assert "statementTimeout" not in roles(run_of("local"))["worker_app"]


def test_grants_and_default_privileges_match_the_plan(stack_run: ProgramRun) -> None:
    plan = access.plan(config_of(stack_run))
    declared = {
        (
            g.inputs["role"],
            g.inputs["database"],
            g.inputs["objectType"],
            g.inputs.get("schema"),
            tuple(g.inputs["privileges"]),
        )
        for g in stack_run.of_type(GRANT)
    }
    assert declared == {(g.role, g.database, g.object_type, g.schema, g.privileges) for g in plan.grants}
    defaults = {
        (d.inputs["role"], d.inputs["owner"], d.inputs["schema"], d.inputs["objectType"], tuple(d.inputs["privileges"]))
        for d in stack_run.of_type(DEFAULTS)
    }
    assert defaults == {(d.role, d.owner, d.schema, d.object_type, d.privileges) for d in plan.default_privileges}


def test_levels_on_prod_through_group_roles() -> None:
    run = run_of("prod")
    grants = {
        (g.inputs["role"], g.inputs["objectType"], g.inputs.get("schema")): g.inputs["privileges"]
        for g in run.of_type(GRANT)
    }
    assert grants[("tracksolid_db_read", "table", "tracksolid")] == ["SELECT"]
    assert grants[("tracksolid_db_write", "table", "tracksolid")] == ["SELECT", "INSERT", "UPDATE", "DELETE"]
    assert grants[("tracksolid_db_write", "sequence", "reporting")] == ["SELECT", "USAGE", "UPDATE"]
    assert grants[("fleet_platform_write", "table", "public")] == ["SELECT", "INSERT", "UPDATE", "DELETE"]
    apps = config_of(run).apps
    assert not [g for g in run.of_type(GRANT) if g.inputs["role"] in apps]  # apps hold memberships only
    members = {name: (r.get("roles") or [], r.get("assumeRole")) for name, r in roles(run).items()}
    assert members["worker_app"] == (["tracksolid_db_read"], None)
    assert members["webhook_app"] == (["tracksolid_db_write"], None)
    assert members["gateway_app"] == (["fleet_platform_write", "fleet_platform_owner"], "fleet_platform_owner")
    # Memberships of managed roles only through Role.roles: a GrantRole would be revoked by the next Role update.
    assert run.of_type("postgresql:index/grantRole:GrantRole") == []


def test_resource_names_are_prefixed_and_keep_deployed_stacks_aliases() -> None:
    run = run_of("prod")
    (webhook,) = [r for r in run.of_type(ROLE) if r.inputs["name"] == "webhook_app"]
    assert (webhook.name, webhook.aliases) == ("access-webhook_app", ("webhook_app",))
    (database,) = [r for r in run.of_type("postgresql:index/database:Database") if r.inputs["name"] == "fleet_platform"]
    # Without the alias a deployed stack would see a new Database and delete the old one: DROP DATABASE.
    assert (database.name, database.aliases) == ("access-fleet_platform", ("fleet_platform",))
    schemas = {r.name: r.aliases for r in run.of_type("postgresql:index/schema:Schema")}
    assert schemas["access-tracksolid_db-reporting"] == ("tracksolid_db-reporting",)
    passwords = {r.name: r.aliases for r in run.of_type("random:index/randomPassword:RandomPassword")}
    assert passwords["access-webhook_app-password"] == ("webhook_app-password",)  # the app's password stays


def test_lookup_function_is_security_definer_in_every_app_database(stack_run: ProgramRun) -> None:
    functions = stack_run.of_type("postgresql:index/function:Function")
    config = config_of(stack_run)
    assert {f.inputs["database"] for f in functions} == (set(config.databases) if config.pgbouncer else set())
    for f in functions:
        assert f.inputs["securityDefiner"] is True
        assert (f.inputs["schema"], f.inputs["name"]) == ("pgbouncer", "get_auth")
    reapply = [
        r for r in stack_run.of_type("pulumi-python:dynamic/postgres-platform:SqlApply") if r.name.endswith("-reapply")
    ]
    assert reapply and all(
        ("SET search_path = pg_catalog, pg_temp" in r.inputs["sql"]) == bool(config.pgbouncer) for r in reapply
    )


def _plain(value: Any, path: str, secrets: set[str]) -> list[str]:
    """Every string in the outputs that is not under a secret output."""
    if path in secrets:
        return []
    if isinstance(value, dict):
        return [s for k, v in value.items() for s in _plain(v, f"{path}.{k}" if path else k, secrets)]
    if isinstance(value, list):
        return [s for i, v in enumerate(value) for s in _plain(v, f"{path}[{i}]", secrets)]
    return [json.dumps(value)]


def test_every_dsn_and_password_output_is_secret(stack_run: ProgramRun) -> None:
    config = config_of(stack_run)
    assert set(stack_run.outputs["apps"]) == set(config.apps)
    for app in config.apps:
        assert f"apps.{app}" in stack_run.secret_outputs
    assert "adminDsn" in stack_run.secret_outputs
    passwords = [fake_secret(r.name) for r in stack_run.of_type("random:index/randomPassword:RandomPassword")]
    plain = " ".join(_plain(stack_run.outputs, "", stack_run.secret_outputs))
    assert passwords and not [p for p in passwords if p in plain]
    assert "budget" not in stack_run.secret_outputs  # the table is for PR comments


def test_each_app_gets_direct_and_pooled_dsns(stack_run: ProgramRun) -> None:
    config = config_of(stack_run)
    for app, spec in config.apps.items():
        forms = stack_run.outputs["apps"][app]
        password = fake_secret(f"access-{app}-password")
        if config.pgbouncer is None:  # an adopted server without PgBouncer: direct only
            assert set(forms) == {"direct"} and forms["direct"]["uri"].endswith(f"/{spec.database}?sslmode=require")
            continue
        for kind, database in (("direct", spec.database), ("pooled", app)):  # pooled: the app's own pool
            assert forms[kind]["uri"].startswith(f"postgresql://{app}:{password}@")
            assert forms[kind]["uri"].split("?")[0].endswith(f"/{database}")
            assert forms[kind]["pgpass"].endswith(f":{database}:{app}:{password}")
        assert all("prepareThreshold" not in forms[kind]["jdbc"] for kind in ("pooled", "direct"))
        assert forms["direct"]["uri"] != forms["pooled"]["uri"]


def test_budget_output_is_the_budget(stack_run: ProgramRun) -> None:
    server, *replicas = stack_run.outputs["budget"]
    assert [r["name"] for r in replicas] == (["replica"] if stack_run.stack == "prod" else [])
    assert all(r["entries"] == server["entries"] for r in replicas)
    assert server["total"] == sum(e["limit"] for e in server["entries"])
    assert (
        server["free"] == server["maxConnections"] - server["superuserReserved"] - server["headroom"] - server["total"]
    )


def test_local_publishes_on_loopback_only_with_configured_images() -> None:
    run = run_of("local")
    containers = {c.inputs["labels"][0]["value"]: c.inputs for c in run.of_type(CONTAINER)}
    assert set(containers) == {"postgres", "pgbouncer", "postgres-exporter", "pgbouncer-exporter"}  # monitoring's
    for container in containers.values():
        assert container["labels"] == [
            {"label": "postgres-platform.component", "value": container["labels"][0]["value"]}
        ]
        for port in container["ports"]:
            assert port["ip"] == "127.0.0.1"
    assert [p["external"] for p in containers["postgres"]["ports"]] == [5432]
    assert [p["external"] for p in containers["pgbouncer"]["ports"]] == [6432]
    # Both images are built on the host from images/, FROM the pinned base, with the pinned packages.
    built = {i.inputs["imageName"]: i.inputs for i in run.of_type("docker:index/image:Image")}
    assert set(built) == {container["image"] for container in containers.values()}
    for build in (POSTGRES_17, PGBOUNCER_124):
        assert built[build.reference]["skipPush"] is True
        assert built[build.reference]["build"]["args"] == {"BASE": DEFAULT_BASE, **build.build_args}
        assert built[build.reference]["build"]["context"] == str(ROOT / "images" / build.context)
    assert run.of_type("docker:index/remoteImage:RemoteImage") == []
    command = containers["postgres"]["command"]
    assert "max_connections=100" in command and "superuser_reserved_connections=3" in command


def test_rendered_pgbouncer_files_hold_no_app_secret() -> None:
    run = run_of("local")
    (write,) = [c for c in run.of_type("command:local:Command") if c.name == "pgbouncer-config-write"]
    assert "stdin" in write.secret_inputs
    files = {name: f.content for name, f in config_files(run, "pgbouncer-config").items()}
    assert set(files) == {"pgbouncer.ini", "pgbouncer_hba.conf", "userlist.txt"}
    everything = "\n".join(files.values())
    for app in config_of(run).apps:
        assert fake_secret(f"access-{app}-password") not in everything
    assert fake_secret("access-pgbouncer_auth-password") in files["userlist.txt"]
    assert "host=postgres port=5432" in files["pgbouncer.ini"]  # the container's network alias


def test_postgresql_provider_waits_for_the_container_and_stays_in_headroom() -> None:
    run = run_of("local")
    (provider,) = run.of_type("pulumi:providers:postgresql")
    assert provider.inputs["host"] == "127.0.0.1"
    assert int(provider.inputs["maxConnections"]) <= 5  # inside adminHeadroom
    (postgres,) = [c for c in run.of_type(CONTAINER) if c.inputs["labels"][0]["value"] == "postgres"]
    assert postgres.inputs["wait"] is True and postgres.inputs["healthcheck"]["tests"][0] == "CMD-SHELL"


def _values_with(stack: str, key: str, value: Any) -> dict[str, Any]:
    values = read_stack_values(stack_file(stack))
    values[f"postgres-platform:{key}"] = json.dumps(value)
    return values


@pytest.mark.parametrize("preview", [True, False])
def test_bad_config_declares_nothing(preview: bool) -> None:
    values = read_stack_values(stack_file("local"))
    apps = json.loads(values["postgres-platform:apps"])
    apps["worker_app"]["connectionLimit"] = -1
    values["postgres-platform:apps"] = json.dumps(apps)
    recorder = RecordingMocks()
    with pytest.raises(StackConfigError) as caught:
        run_program("local", values, preview=preview, recorder=recorder)
    assert "apps.worker_app.connectionLimit: must be an integer >= 1, got -1" in str(caught.value)
    assert recorder.registered == []


def test_databases_and_schemas_are_protected_and_every_app_is_retired_before_its_role_is_dropped(
    stack_run: ProgramRun,
) -> None:
    for resource in stack_run.of_type("postgresql:index/database:Database") + stack_run.of_type(
        "postgresql:index/schema:Schema"
    ):
        assert resource.protect, resource.name
    retirements = {
        r.inputs["role"]: r for r in stack_run.of_type("pulumi-python:dynamic/postgres-platform:RoleRetirement")
    }
    config = config_of(stack_run)
    assert set(retirements) == set(config.apps)
    role_urns = {r.inputs["name"]: r.urn for r in stack_run.of_type(ROLE)}
    for app, retirement in retirements.items():
        # It depends on the role, so the engine deletes it (and runs the reassignment) first.
        assert role_urns[app] in retirement.property_dependencies["role"]
        # Its own database only: the only one an app can own objects in.
        assert set(retirement.inputs["statements"]) == {config.apps[app].database}
        owner = f"{config.apps[app].database}_owner"
        assert f'REASSIGN OWNED BY "{app}" TO "{owner}";' in retirement.inputs["statements"][config.apps[app].database]
        assert "connection" in retirement.secret_inputs


def test_rotation_gives_the_newly_active_login_a_new_password_and_the_dsns_name_it() -> None:
    values = read_stack_values(stack_file("local"))
    apps = json.loads(values["postgres-platform:apps"])
    apps["cron_app"]["rotation"] = 1
    values["postgres-platform:apps"] = json.dumps(apps)
    run = run_program("local", values)
    passwords = {r.name: r.inputs for r in run.of_type("random:index/randomPassword:RandomPassword")}
    assert "keepers" not in passwords["access-cron_app_a-password"]  # generation 0: as deployed before
    assert passwords["access-cron_app_b-password"]["keepers"] == {"generation": "1"}
    assert "access-webhook_app-password" in passwords and "keepers" not in passwords["access-webhook_app-password"]
    pooled = run.outputs["apps"]["cron_app"]["pooled"]["uri"]
    assert pooled.startswith("postgresql://cron_app_b:") and "/cron_app?" in pooled
    hba = config_files(run, "pgbouncer-config")["pgbouncer_hba.conf"].content
    assert "host cron_app cron_app_a 0.0.0.0/0 scram-sha-256" in hba and "host cron_app cron_app_b" in hba
