"""Components one at a time under mocks, with only their args: what each declares, named and parented."""

from __future__ import annotations

import pickle

import dill
import pulumi
import pulumi_postgresql as postgresql

from components.access import DatabaseAccess, DatabaseAccessArgs
from components.config_files import HostShell
from components.pgbouncer import PgBouncer, PgBouncerArgs
from components.resources.admin import AdminAddress, AdminConnection
from components.resources.containers import Placement
from components.resources.sql_apply import RoleRetirementProvider, SqlApplyProvider
from postgres_platform.model import access
from postgres_platform.model.load import parse
from postgres_platform.offline.program import ProgramRun, run_program
from tests.helpers import config_files, valid_config


def run(program: object) -> ProgramRun:
    assert callable(program)
    return run_program("unit", {}, program=program)


def test_database_access_alone_declares_the_plan_under_its_name() -> None:
    plan = access.plan(parse(valid_config()))

    def program() -> None:
        provider = postgresql.Provider("server")
        admin = AdminConnection(AdminAddress("127.0.0.1", 5432, "disable"), "postgres", pulumi.Output.secret("x"))
        DatabaseAccess("acl", DatabaseAccessArgs(plan, provider, admin))

    result = run(program)
    children = [r for r in result.resources if not r.type.startswith(("postgres-platform:", "pulumi:providers"))]
    assert all(r.name.startswith("acl-") for r in children)
    roles = {r.inputs["name"] for r in result.of_type("postgresql:index/role:Role")}
    assert roles == {r.name for r in plan.roles}
    assert len(result.of_type("postgresql:index/grant:Grant")) == len(plan.grants)
    assert len(result.of_type("pulumi-python:dynamic/postgres-platform:SqlApply")) == len(plan.databases)
    (reapply,) = [
        r
        for r in result.of_type("pulumi-python:dynamic/postgres-platform:SqlApply")
        if r.inputs["database"] == "fleet_platform"
    ]
    assert reapply.inputs["connection"]["sslmode"] == "disable" and "connection" in reapply.secret_inputs


def test_pgbouncer_alone_mounts_its_config_directory_and_writes_its_auth_file() -> None:
    def program() -> None:
        PgBouncer(
            "pool",
            PgBouncerArgs(
                config=parse(valid_config()),
                ini="[pgbouncer]\n",
                hba="host all all 0.0.0.0/0 reject\n",
                auth_password=pulumi.Output.secret("auth-secret"),
                placement=Placement(network_name="net"),
                shell=HostShell(root="/srv/pp"),
            ),
        )

    result = run(program)
    (container,) = result.of_type("docker:index/container:Container")
    assert container.name == "pool-container"
    files = config_files(result, "pool-config")
    assert files["pgbouncer.ini"].content == "[pgbouncer]\n"
    assert '"pgbouncer_auth" "auth-secret"' in files["userlist.txt"].content and files["userlist.txt"].mode == "0600"
    assert {r.name for r in result.of_type("random:index/randomPassword:RandomPassword")} == {"pool-admin-password"}
    # Files reach the host beside the container, which mounts them: a new file never means a new container.
    assert container.inputs["mounts"] == [
        {"target": "/etc/pgbouncer", "source": "/srv/pp/pgbouncer", "type": "bind", "readOnly": True}
    ]
    assert "uploads" not in container.inputs
    assert (container.inputs["stopSignal"], container.inputs["destroyGraceSeconds"]) == ("SIGINT", 60)


def test_dynamic_providers_pickled_under_their_old_module_still_load() -> None:
    """Deployed state holds each SQL step's provider as dill pickled it: by reference to its module. The
    module moved (postgres_platform.sql_apply -> components.resources.sql_apply); deleting a resource
    deployed before the move unpickles the old name."""
    for provider in (SqlApplyProvider, RoleRetirementProvider):
        assert b"components.resources.sql_apply" in dill.dumps(provider(), recurse=True)  # by reference
        old = f"cpostgres_platform.sql_apply\n{provider.__name__}\n.".encode()  # GLOBAL, as older state has it
        assert pickle.loads(old) is provider
