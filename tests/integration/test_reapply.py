"""The SQL steps as the engine runs them: serialized by the SDK, loaded and called in a fresh process,
against a real PostgreSQL 17 container over TLS with verify-full (the Hetzner stacks' connection)."""

from __future__ import annotations

import json
import subprocess
import sys
import time
from typing import Any

import psycopg
import pytest
from pulumi.dynamic import ResourceProvider
from pulumi.dynamic.dynamic import serialize_provider

from components.resources.sql_apply import RoleRetirementProvider, SqlApplyProvider
from postgres_platform.harness.servers import LOOPBACK, Servers
from postgres_platform.model import access
from postgres_platform.model.load import load_stack_values
from postgres_platform.model.stackfile import read_stack_values, stack_file
from postgres_platform.render import sql

PROD = load_stack_values(read_stack_values(stack_file("prod")))
PLAN = access.plan(PROD)

# What the engine's dynamic provider host does with the `__provider` property: base64 -> dill.loads.
ENGINE = """
import base64, json, sys
import dill
request = json.load(sys.stdin)
provider = dill.loads(base64.b64decode(request["provider"]))
method = getattr(provider, request["method"])
result = method(*request["args"])
if request["method"] == "diff":
    print(json.dumps({"changes": result.changes}))
elif request["method"] == "create":
    print(json.dumps({"id": result.id}))
else:
    print(json.dumps({}))
"""


def engine(provider: ResourceProvider, method: str, *args: Any) -> dict[str, Any]:
    request = {"provider": serialize_provider(provider), "method": method, "args": list(args)}
    done = subprocess.run([sys.executable, "-c", ENGINE], input=json.dumps(request), capture_output=True, text=True)
    assert done.returncode == 0, done.stderr[-3000:]
    result: dict[str, Any] = json.loads(done.stdout)
    return result


@pytest.fixture(scope="module")
def servers(prod_tls_servers: Servers) -> Servers:
    return prod_tls_servers


def connection(servers: Servers) -> dict[str, Any]:
    """What components.postgres.AdminConnection.as_secret_input gives the step on a Hetzner stack."""
    return {
        "host": LOOPBACK,
        "port": servers.pg_port,
        "user": "postgres",
        "password": servers.superuser_password,
        "sslmode": "verify-full",
        "sslrootcert": str(servers.ca_file),
    }


def reapply_props(servers: Servers, database: str) -> dict[str, Any]:
    return {
        "connection": connection(servers),
        "database": database,
        "purpose": "test",
        "sql": sql.reapply_script(PLAN, database),
        "check": sql.reapply_check(PLAN, database),
    }


def test_reapply_runs_over_verify_full_and_its_diff_reports_only_what_is_missing(servers: Servers) -> None:
    props = reapply_props(servers, "tracksolid_db")
    assert engine(SqlApplyProvider(), "create", props)["id"] == "tracksolid_db:test"
    assert engine(SqlApplyProvider(), "diff", "id", props, props) == {"changes": False}  # a clean preview

    # A migration creates the migration table after the last up: the write group got it by default.
    servers.psql(
        "SET ROLE tracksolid_db_owner; CREATE TABLE tracksolid.schema_migrations (v text);", database="tracksolid_db"
    )
    assert engine(SqlApplyProvider(), "diff", "id", props, props) == {"changes": True}
    engine(SqlApplyProvider(), "update", "id", props, props)
    assert engine(SqlApplyProvider(), "diff", "id", props, props) == {"changes": False}
    with (
        psycopg.connect(servers.dsn("webhook_app", "tracksolid_db", pooled=False)) as conn,
        pytest.raises(psycopg.errors.InsufficientPrivilege),
    ):
        conn.execute("INSERT INTO tracksolid.schema_migrations VALUES ('x')")

    # Someone replaced the lookup function (CREATE OR REPLACE resets its search_path).
    servers.psql("ALTER FUNCTION pgbouncer.get_auth(text) RESET search_path;", database="tracksolid_db")
    assert engine(SqlApplyProvider(), "diff", "id", props, props) == {"changes": True}

    engine(SqlApplyProvider(), "update", "id", props, props)
    # The superuser password was rotated since the last up: a new connection alone is no reason to run.
    before = {**props, "connection": {**props["connection"], "password": "the-old-one"}}
    assert engine(SqlApplyProvider(), "diff", "id", before, props) == {"changes": False}


def test_without_the_stack_ca_verify_full_fails(servers: Servers) -> None:
    props = reapply_props(servers, "fleet_platform")
    props["connection"] = {**props["connection"], "sslrootcert": None}
    request = {"provider": serialize_provider(SqlApplyProvider()), "method": "create", "args": [props]}
    done = subprocess.run(
        [sys.executable, "-c", ENGINE],
        input=json.dumps(request),
        capture_output=True,
        text=True,
        env={"HOME": str(servers.root), "PATH": "/usr/bin:/bin"},
    )
    assert done.returncode != 0 and "root certificate file" in done.stderr


def test_retiring_an_app_moves_what_it_owns_to_the_owner_before_its_role_is_dropped(servers: Servers) -> None:
    servers.psql(
        "CREATE ROLE leaving_app LOGIN; GRANT fleet_platform_write, fleet_platform_owner TO leaving_app;"
        "SET ROLE leaving_app; CREATE TABLE public.left_behind (id int); INSERT INTO public.left_behind VALUES (1);",
        database="fleet_platform",
    )
    with pytest.raises(RuntimeError, match="cannot be dropped"):
        servers.psql("DROP ROLE leaving_app;")  # what the provider's delete ran into before
    statements = {db.name: sql.retire_role("leaving_app", db.owner) for db in PLAN.databases}
    props = {"connection": connection(servers), "role": "leaving_app", "statements": statements}
    engine(RoleRetirementProvider(), "delete", "leaving_app", props)
    servers.psql("DROP ROLE leaving_app;")
    with psycopg.connect(servers.superuser_dsn("fleet_platform")) as admin:
        row = admin.execute(
            "SELECT tableowner, (SELECT count(*) FROM public.left_behind) FROM pg_tables "
            "WHERE tablename = 'left_behind'"
        ).fetchone()
    assert row == ("fleet_platform_owner", 1)
    engine(RoleRetirementProvider(), "delete", "leaving_app", props)  # a retried delete: the role is gone, no error


def test_a_step_behind_an_open_migration_gives_up_in_one_line_and_succeeds_once_it_ends(servers: Servers) -> None:
    """A migration's ALTER TABLE left open: the re-apply step does not queue behind it (which would
    block every query behind the step too); it names who holds the lock, then runs once it is gone."""
    servers.psql(
        "SET ROLE tracksolid_db_owner; CREATE TABLE IF NOT EXISTS tracksolid.schema_migrations (v text);",
        database="tracksolid_db",
    )
    props = reapply_props(servers, "tracksolid_db")
    with psycopg.connect(servers.superuser_dsn("tracksolid_db")) as migration:
        migration.execute("SET application_name = 'alembic'")
        (pid,) = migration.execute("SELECT pg_backend_pid()").fetchone() or (None,)
        migration.execute("ALTER TABLE tracksolid.schema_migrations ADD COLUMN IF NOT EXISTS applied date")
        started = time.monotonic()
        with pytest.raises(RuntimeError) as refused:
            SqlApplyProvider().create(props)
        message = str(refused.value)
        assert (
            "\n" not in message
            and f"pid {pid} (postgres, alembic: 'ALTER TABLE tracksolid.schema_migrations" in message
        )
        assert "lock_timeout 5s, 3 tries" in message and time.monotonic() - started < 60
        migration.rollback()
    SqlApplyProvider().create(props)  # the lock is gone: the step runs
