"""Grants beyond the plan on a PostgreSQL 17 and PgBouncer of the shipped images: `live_budget.py --check-grants`
names each one with the SQL that removes it (exit 1), re-applying the plan (render_sql's script, and the
re-apply step as the engine runs it) removes it, and the check reads the catalogs a handful of times per
database however many tables there are."""

from __future__ import annotations

import contextlib
import io
import json
from collections.abc import Iterator
from typing import Any

import psycopg
import pytest

from components.resources.sql_apply import SqlApplyProvider
from postgres_platform.cli import live_budget
from postgres_platform.harness.servers import LOOPBACK, Servers
from postgres_platform.model import access
from postgres_platform.model.load import load_stack_values
from postgres_platform.model.stackfile import read_stack_values, stack_file
from postgres_platform.render import sql

# The local stack (prod's apps: worker_app and dashboard_app read tracksolid_db), without its backups.
LOCAL = load_stack_values(read_stack_values(stack_file("local"))).model_copy(update={"backup": None})
PLAN = access.plan(LOCAL)
LOGIN_WHY = "a login holds nothing directly, only its memberships"
LOOKUP = '"pgbouncer"."get_auth"(text)'

# What a hand, a console or a migration adds beyond the plan (the "just grant it" fixes done by hand).
BEYOND = {
    "tracksolid_db": """
        GRANT DELETE, TRUNCATE ON tracksolid.devices TO worker_app;
        GRANT CREATE ON SCHEMA tracksolid TO worker_app;
        GRANT TRUNCATE ON tracksolid.devices TO tracksolid_db_read;
        GRANT tracksolid_db_write TO worker_app;
        ALTER DEFAULT PRIVILEGES FOR ROLE tracksolid_db_owner IN SCHEMA tracksolid GRANT DELETE ON TABLES
          TO tracksolid_db_read;
    """,
}
# Each with its problem and its fix, as the check reports them.
REPORTED = {
    f"tracksolid_db: worker_app holds DELETE, TRUNCATE on table tracksolid.devices, beyond the plan ({LOGIN_WHY})": "REVOKE DELETE, TRUNCATE ON TABLE tracksolid.devices FROM worker_app CASCADE;",
    f"tracksolid_db: worker_app holds CREATE on schema tracksolid, beyond the plan ({LOGIN_WHY})": "REVOKE CREATE ON SCHEMA tracksolid FROM worker_app CASCADE;",
    "tracksolid_db: tracksolid_db_read holds TRUNCATE on table tracksolid.devices, beyond the plan (its level is read)": "REVOKE TRUNCATE ON TABLE tracksolid.devices FROM tracksolid_db_read CASCADE;",
    "role worker_app is a member of tracksolid_db_write, beyond the plan": "REVOKE tracksolid_db_write FROM worker_app CASCADE;",
    "tracksolid_db: tracksolid_db_read gets DELETE on new tables of tracksolid_db_owner in tracksolid, beyond the plan "
    "(its level is read)": "ALTER DEFAULT PRIVILEGES FOR ROLE tracksolid_db_owner IN SCHEMA tracksolid REVOKE DELETE ON TABLES FROM "
    "tracksolid_db_read;",
}


@pytest.fixture(scope="module")
def servers() -> Iterator[Servers]:
    with Servers(LOCAL) as started:
        started.psql(
            "SET ROLE tracksolid_db_owner; CREATE TABLE tracksolid.devices (id bigserial PRIMARY KEY, note text);"
            "INSERT INTO tracksolid.devices (note) VALUES ('a'), ('b'), ('c');",
            database="tracksolid_db",
        )
        started.psql(
            "SET ROLE fleet_platform_owner; CREATE TABLE public.vehicles (id bigserial PRIMARY KEY);",
            database="fleet_platform",
        )
        yield started


def check(servers: Servers) -> tuple[int, list[dict[str, str]]]:
    """scripts/live_budget.py local --dsn ADMIN --check-grants --json: (exit code, failures)."""
    out = io.StringIO()
    with contextlib.redirect_stdout(out):
        code = live_budget.main(["local", "--dsn", servers.superuser_dsn(), "--check-grants", "--json"])
    report = json.loads(out.getvalue())
    assert set(report) == {"problems", "failures"} and report["failures"] == report["problems"]  # 0.3.0's name too
    assert all(set(f) == {"problem", "fix"} for f in report["problems"])
    failures: list[dict[str, str]] = report["problems"]
    return code, failures


def problems(failures: list[dict[str, str]]) -> dict[str, str]:
    return {f["problem"]: f["fix"] for f in failures}


def as_app(servers: Servers, app: str, statement: str, *, pooled: bool = False) -> str | None:
    """Run one statement as an app (its pool when pooled); None, or the error it got."""
    database = app if pooled else LOCAL.apps[app].database
    try:
        with psycopg.connect(servers.dsn(app, database, pooled=pooled), autocommit=True, prepare_threshold=None) as c:
            c.execute(statement)
        return None
    except psycopg.Error as exc:
        return str(exc)


def database_of(problem: str) -> str:
    """Where a failure's fix runs: the database its problem names, else anywhere (roles, databases)."""
    head = problem.split(":", 1)[0]
    return head if head in LOCAL.databases else "postgres"


def test_a_server_as_planned_passes_and_the_text_report_says_so(servers: Servers) -> None:
    assert check(servers) == (0, [])
    out = io.StringIO()
    with contextlib.redirect_stdout(out):
        code = live_budget.main(["local", "--dsn", servers.superuser_dsn(), "--check-grants"])
    assert (code, out.getvalue()) == (0, "grants as planned\n")


def test_privileges_beyond_the_plan_are_reported_with_fixes_that_remove_them(servers: Servers) -> None:
    servers.psql(BEYOND["tracksolid_db"], database="tracksolid_db")
    assert as_app(servers, "worker_app", "DELETE FROM tracksolid.devices WHERE id = 0") is None  # the drift is real
    code, failures = check(servers)
    assert code == 1 and problems(failures) == REPORTED
    for failure in failures:  # each fix alone, as an operator would paste it
        servers.psql(failure["fix"], database=database_of(failure["problem"]))
    assert check(servers) == (0, [])


def test_the_lookup_function_dropped_or_unpinned_is_reported_and_pooled_logins_come_back(servers: Servers) -> None:
    servers.psql(f"DROP FUNCTION {LOOKUP};", database="tracksolid_db")
    servers.psql(f"ALTER FUNCTION {LOOKUP} RESET search_path;", database="fleet_platform")
    assert "bouncer config error" in (as_app(servers, "dashboard_app", "SELECT 1", pooled=True) or "")
    code, failures = check(servers)
    assert code == 1
    found = problems(failures)
    missing = f"tracksolid_db: the lookup function {LOOKUP} is missing (pooled logins fail: bouncer config error)"
    unpinned = f"fleet_platform: the lookup function {LOOKUP} has settings [], not ['search_path=pg_catalog, pg_temp']"
    assert set(found) == {missing, unpinned}
    assert "CREATE OR REPLACE FUNCTION" in found[missing]
    assert 'GRANT EXECUTE ON ALL FUNCTIONS IN SCHEMA "pgbouncer" TO "pgbouncer_auth";' in found[missing]
    assert found[unpinned] == sql.harden_auth_function()
    for failure in failures:  # the fixes alone (the plan again does it too: the next test)
        servers.psql(failure["fix"], database=database_of(failure["problem"]))
    assert check(servers) == (0, [])
    assert as_app(servers, "dashboard_app", "SELECT 1", pooled=True) is None


def test_a_changed_lookup_function_is_reported_and_the_plan_restores_it(servers: Servers) -> None:
    # Someone "simplifies" the body: now it hands out the superuser's secret. (CREATE OR REPLACE also
    # drops its search_path: pinned again, so the body is all that differs there.)
    servers.psql(
        "CREATE OR REPLACE FUNCTION pgbouncer.get_auth(p_usename text) RETURNS TABLE(usename text, passwd text) "
        "LANGUAGE sql STABLE SECURITY DEFINER AS $$ SELECT rolname::text, rolpassword FROM pg_catalog.pg_authid "
        f"WHERE rolname = p_usename $$; {sql.harden_auth_function()}",
        database="fleet_platform",
    )
    servers.psql(
        f"ALTER FUNCTION {LOOKUP} OWNER TO tracksolid_db_owner; ALTER FUNCTION {LOOKUP} SECURITY INVOKER;",
        database="tracksolid_db",
    )
    with psycopg.connect(servers.superuser_dsn("fleet_platform")) as admin:
        assert admin.execute("SELECT count(*) FROM pgbouncer.get_auth('postgres')").fetchone() == (1,)
    code, failures = check(servers)
    found = problems(failures)
    assert code == 1 and set(found) == {
        f"fleet_platform: the lookup function {LOOKUP} differs from what the program renders: its body",
        f"tracksolid_db: the lookup function {LOOKUP} is owned by tracksolid_db_owner, not a superuser (it reads "
        "pg_authid as its owner)",
        f"tracksolid_db: the lookup function {LOOKUP} is not SECURITY DEFINER",
    }
    assert found[f"tracksolid_db: the lookup function {LOOKUP} is not SECURITY DEFINER"] == (
        f"ALTER FUNCTION {LOOKUP} SECURITY DEFINER;"
    )
    servers.apply_plan()
    assert check(servers) == (0, [])
    with psycopg.connect(servers.superuser_dsn("fleet_platform")) as admin:
        assert admin.execute("SELECT count(*) FROM pgbouncer.get_auth('postgres')").fetchone() == (0,)
    assert as_app(servers, "worker_app", "SELECT 1", pooled=True) is None


def test_re_applying_the_plan_removes_what_is_beyond_it_and_the_apps_lose_it(servers: Servers) -> None:
    servers.psql(BEYOND["tracksolid_db"], database="tracksolid_db")
    servers.psql(f"DROP FUNCTION {LOOKUP};", database="tracksolid_db")
    servers.psql(f"ALTER FUNCTION {LOOKUP} RESET search_path;", database="fleet_platform")
    code, failures = check(servers)
    assert code == 1 and set(REPORTED) <= set(problems(failures)) and len(failures) == len(REPORTED) + 2
    assert as_app(servers, "dashboard_app", "TRUNCATE tracksolid.devices") is None  # through the read group
    servers.psql("INSERT INTO tracksolid.devices (note) VALUES ('a'), ('b'), ('c');", database="tracksolid_db")

    servers.apply_plan()
    assert check(servers) == (0, [])
    for app, statement in [
        ("worker_app", "DELETE FROM tracksolid.devices"),
        ("worker_app", "TRUNCATE tracksolid.devices"),
        ("worker_app", "CREATE TABLE tracksolid.mine (id int)"),
        ("worker_app", "INSERT INTO tracksolid.devices (note) VALUES ('x')"),  # the write group's, no more
        ("dashboard_app", "TRUNCATE tracksolid.devices"),
    ]:
        assert "permission denied" in (as_app(servers, app, statement) or ""), (app, statement)
    assert as_app(servers, "worker_app", "SELECT count(*) FROM tracksolid.devices") is None  # its level stays
    assert as_app(servers, "webhook_app", "DELETE FROM tracksolid.devices WHERE id = 0") is None
    # A table a later migration creates: the read group gets SELECT by default again, and no DELETE.
    servers.psql("SET ROLE tracksolid_db_owner; CREATE TABLE tracksolid.later (id int);", database="tracksolid_db")
    assert "permission denied" in (as_app(servers, "worker_app", "DELETE FROM tracksolid.later") or "")
    assert as_app(servers, "worker_app", "SELECT * FROM tracksolid.later") is None
    assert as_app(servers, "dashboard_app", "SELECT 1", pooled=True) is None  # the lookup function is back
    assert as_app(servers, "cron_app", "SELECT 1", pooled=True) is None


def step(servers: Servers, database: str) -> dict[str, Any]:
    """The re-apply step's inputs as components/access.py declares them (a local stack's connection)."""
    connection = {
        "host": LOOPBACK,
        "port": servers.pg_port,
        "user": "postgres",
        "password": servers.superuser_password,
        "sslmode": "disable",
        "sslrootcert": None,
    }
    return {
        "connection": connection,
        "database": database,
        "purpose": "test",
        "sql": sql.reapply_script(PLAN, database),
        "check": sql.reapply_check(PLAN, database),
    }


def test_the_re_apply_step_sees_what_is_beyond_the_plan_and_revokes_it(servers: Servers) -> None:
    provider = SqlApplyProvider()
    tracksolid, fleet = step(servers, "tracksolid_db"), step(servers, "fleet_platform")
    assert not provider.diff("id", tracksolid, tracksolid).changes and not provider.diff("id", fleet, fleet).changes
    servers.psql(BEYOND["tracksolid_db"], database="tracksolid_db")
    # A preview shows the step of the database with the drift (memberships: the first database's step only).
    assert provider.diff("id", tracksolid, tracksolid).changes and not provider.diff("id", fleet, fleet).changes
    provider.update("id", tracksolid, tracksolid)
    assert not provider.diff("id", tracksolid, tracksolid).changes
    assert check(servers) == (0, [])
    assert "permission denied" in (as_app(servers, "worker_app", "DELETE FROM tracksolid.devices") or "")


def test_the_check_makes_a_few_queries_however_many_tables(servers: Servers, monkeypatch: pytest.MonkeyPatch) -> None:
    executed: list[str] = []
    execute = psycopg.Connection.execute

    def counting(self: psycopg.Connection[Any], query: Any, *args: Any, **kwargs: Any) -> Any:
        executed.append(str(query))
        return execute(self, query, *args, **kwargs)

    monkeypatch.setattr(psycopg.Connection, "execute", counting)

    def queries() -> int:
        executed.clear()
        assert check(servers) == (0, [])
        return len(executed)

    few = queries()
    servers.psql(
        "SET ROLE tracksolid_db_owner; DO $$ BEGIN FOR i IN 1..300 LOOP EXECUTE pg_catalog.format("
        "'CREATE TABLE tracksolid.t%s (id bigserial PRIMARY KEY, note text)', i); END LOOP; END $$;",
        database="tracksolid_db",
    )
    many = queries()
    # Roles and the cluster (databases, memberships) once; per database: relations, database/schema/function
    # privileges, default privileges, migration tables, everything beyond the plan, the lookup function.
    assert few == many == 2 + 6 * len(PLAN.databases)
    servers.psql("GRANT TRUNCATE ON ALL TABLES IN SCHEMA tracksolid TO tracksolid_db_read;", database="tracksolid_db")
    with psycopg.connect(servers.superuser_dsn("tracksolid_db")) as admin:
        row = admin.execute("SELECT count(*) FROM pg_tables WHERE schemaname = 'tracksolid'").fetchone()
    tables = int(row[0]) if row else 0
    code, failures = check(servers)
    (failure,) = failures  # one problem, one statement: all the tables
    assert code == 1 and failure["problem"].startswith("tracksolid_db: tracksolid_db_read holds TRUNCATE on tables ")
    assert failure["problem"].endswith(f" and {tables - 5} more, beyond the plan (its level is read)")
    assert failure["fix"].startswith("REVOKE TRUNCATE ON TABLE ") and failure["fix"].count("tracksolid.") == tables
    servers.apply_plan()
    assert check(servers) == (0, [])
