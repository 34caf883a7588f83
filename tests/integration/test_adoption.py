"""Adopting a running server in a container of the shipped PostgreSQL 17 image (issue 12's proof, moved to containers).

A "legacy" server as it ran before this program: tracksolid_db (tracksolid, reporting, and a
_timescaledb_catalog schema standing in for the extension's) and fleet_platform (public), every
object owned by postgres but one matview of reporting_refresher, rows, and six services connected as
postgres. Then discover, the adoption (the plan of Pulumi.legacy.yaml as rendered SQL, applied while
the services run), each app over its own login, live_budget and --check-grants before and after.
A second server plays a managed one: its admin has CREATEROLE and owns the data, no superuser.
"""

from __future__ import annotations

import contextlib
import io
import json
import threading
import time
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import psycopg
import pytest
import yaml

from postgres_platform.cli import discover, live_budget, preflight
from postgres_platform.harness.servers import Servers
from postgres_platform.model import access
from postgres_platform.model.load import load_stack_values
from postgres_platform.model.stackfile import read_stack_values, stack_file
from postgres_platform.render import sql

LEGACY = load_stack_values(read_stack_values(stack_file("legacy")))

EXTERNAL = "".join(
    f"CREATE ROLE {name} LOGIN PASSWORD 'x' CONNECTION LIMIT {spec.connection_limit};\n"
    for name, spec in LEGACY.external_roles.items()
)
TRACKSOLID = """
CREATE SCHEMA tracksolid; CREATE SCHEMA reporting; CREATE SCHEMA _timescaledb_catalog;
CREATE TABLE _timescaledb_catalog.hypertable (id serial PRIMARY KEY, table_name text);
INSERT INTO _timescaledb_catalog.hypertable (table_name) VALUES ('positions');
CREATE TABLE tracksolid.positions (id bigserial PRIMARY KEY, device text, speed int);
INSERT INTO tracksolid.positions (device, speed) SELECT 'dev' || g % 7, g % 130 FROM generate_series(1, 500) g;
CREATE TABLE tracksolid.readings (at date NOT NULL, value int) PARTITION BY RANGE (at);
CREATE TABLE tracksolid.readings_2026 PARTITION OF tracksolid.readings FOR VALUES FROM ('2026-01-01') TO ('2027-01-01');
INSERT INTO tracksolid.readings SELECT date '2026-01-01' + g, g FROM generate_series(0, 99) g;
CREATE TABLE tracksolid.schema_migrations (version text PRIMARY KEY);
INSERT INTO tracksolid.schema_migrations VALUES ('20260101_init');
CREATE SEQUENCE tracksolid.batch_seq;
CREATE VIEW tracksolid.v_fast AS SELECT * FROM tracksolid.positions WHERE speed > 100;
CREATE FUNCTION tracksolid.kmh(int) RETURNS int LANGUAGE sql IMMUTABLE AS 'SELECT $1';
CREATE TABLE reporting.daily (day date PRIMARY KEY, trips int);
INSERT INTO reporting.daily SELECT date '2026-01-01' + g, g * 3 FROM generate_series(0, 49) g;
CREATE MATERIALIZED VIEW reporting.v_trips AS SELECT device, count(*) AS n FROM tracksolid.positions GROUP BY 1;
ALTER MATERIALIZED VIEW reporting.v_trips OWNER TO reporting_refresher;
"""
FLEET = """
CREATE TABLE public.vehicles (id serial PRIMARY KEY, plate text);
INSERT INTO public.vehicles (plate) SELECT 'B-' || g FROM generate_series(1, 40) g;
CREATE TABLE public.jobs (id serial PRIMARY KEY, name text);
CREATE TABLE public.alembic_version (version_num text PRIMARY KEY); INSERT INTO public.alembic_version VALUES ('a1');
"""
# The six services that ran on it as postgres (application_name, database, connections, statement).
SERVICES = [
    ("webhook_receiver", "tracksolid_db", 2, "INSERT INTO tracksolid.positions (device, speed) VALUES ('hook', 1)"),
    ("ingest_worker", "tracksolid_db", 1, "UPDATE tracksolid.readings SET value = value WHERE at = '2026-01-01'"),
    ("worker", "tracksolid_db", 1, "SELECT count(*) FROM tracksolid.positions"),
    ("dashboard_api", "tracksolid_db", 2, "SELECT sum(trips) FROM reporting.daily"),
    ("gateway", "fleet_platform", 1, "UPDATE public.vehicles SET plate = plate WHERE id = 1"),
    ("cron", "fleet_platform", 1, "INSERT INTO public.jobs (name) VALUES ('nightly')"),
]
# Each service's app in the stack file.
APP_OF = {
    "webhook_receiver": "webhook_app",
    "ingest_worker": "ingest_app",
    "worker": "worker_app",
    "dashboard_api": "dashboard_app",
    "gateway": "gateway_app",
    "cron": "cron_app",
}
# Rows the services add while the adoption runs are theirs: checksums cover the rows that were there.
ROWS_BEFORE = {"tracksolid.positions": "id <= 500", "public.jobs": "false"}


class Service:
    """One service's connections, looping on its statement until stopped; failures counted."""

    def __init__(self, dsns: list[str], statement: str) -> None:
        self.done, self.stop = 0, threading.Event()
        self.failures: list[str] = []
        self.threads = [threading.Thread(target=self._run, args=(dsn, statement), daemon=True) for dsn in dsns]
        for thread in self.threads:
            thread.start()

    def _run(self, dsn: str, statement: str) -> None:
        with psycopg.connect(dsn, autocommit=True) as conn:
            while not self.stop.is_set():
                try:
                    conn.execute(statement)
                    self.done += 1
                except psycopg.Error as exc:
                    self.failures.append(str(exc))
                time.sleep(0.02)

    def close(self) -> None:
        self.stop.set()
        for thread in self.threads:
            thread.join(10)


def start_services(connect: Callable[[str, str, str], str]) -> list[Service]:
    """connect(service, database, application_name) -> DSN."""
    running = []
    for name, database, count, statement in SERVICES:
        dsn = connect(name, database, name)
        running.append(Service([dsn] * count, statement))
    time.sleep(0.5)
    return running


def stop_services(running: list[Service]) -> list[str]:
    for service in running:
        service.close()
    return [f for s in running for f in s.failures]


def rows(servers: Servers, query: str, database: str) -> list[str]:
    """psql's unaligned rows of a query, as the superuser."""
    return servers.psql(f"\\pset tuples_only on\n\\pset format unaligned\n{query}", database=database).split("\n")[:-1]


def checksums(servers: Servers) -> dict[str, str]:
    """Rows and an md5 of every table and matview of both databases (the pre-existing rows)."""
    out = {}
    for db in LEGACY.databases:
        relations = rows(
            servers,
            "SELECT n.nspname || '.' || c.relname FROM pg_class c JOIN pg_namespace n ON "
            "n.oid = c.relnamespace WHERE c.relkind IN ('r', 'm') AND n.nspname NOT IN "
            "('pg_catalog', 'information_schema') AND n.nspname NOT LIKE 'pg_toast%' ORDER BY 1;",
            db,
        )
        for rel in relations:
            where = ROWS_BEFORE.get(rel, "true")
            (out[f"{db}.{rel}"],) = rows(
                servers,
                f"SELECT count(*), md5(coalesce(string_agg(t::text, '|' ORDER BY "
                f"t::text), '')) FROM {rel} t WHERE {where};",
                db,
            )
    return out


def owners(servers: Servers, db: str) -> dict[str, str]:
    found = rows(
        servers,
        "SELECT n.nspname || '.' || c.relname || '=' || pg_get_userbyid(c.relowner) FROM pg_class c JOIN pg_namespace n "
        "ON n.oid = c.relnamespace WHERE c.relkind IN ('r', 'p', 'v', 'm', 'S') AND n.nspname NOT IN ('pg_catalog', "
        "'information_schema') AND n.nspname NOT LIKE 'pg_toast%' UNION ALL SELECT n.nspname || '=' || "
        "pg_get_userbyid(n.nspowner) FROM pg_namespace n WHERE n.nspname NOT LIKE 'pg_%' AND n.nspname <> "
        "'information_schema' UNION ALL SELECT p.oid::regprocedure::text || '=' || pg_get_userbyid(p.proowner) "
        "FROM pg_proc p JOIN pg_namespace n ON n.oid = p.pronamespace WHERE n.nspname = 'tracksolid';",
        db,
    )
    return dict(line.split("=", 1) for line in found)


def run_cli(main: Callable[[list[str]], int], argv: list[str]) -> tuple[int, dict[str, Any]]:
    out = io.StringIO()
    with contextlib.redirect_stdout(out):
        code = main(argv)
    return code, json.loads(out.getvalue())


def budget_when(argv: list[str], settled: Callable[[dict[str, Any]], bool]) -> tuple[int, dict[str, Any]]:
    """live_budget's report once `settled` holds, for up to 5 s: a closed session's backend (psql's,
    discover's) lingers a moment after its client is gone."""
    deadline = time.monotonic() + 5
    while True:
        code, report = run_cli(live_budget.main, argv)
        if settled(report) or time.monotonic() > deadline:
            return code, report
        time.sleep(0.2)


@pytest.fixture(scope="module")
def legacy() -> Iterator[Servers]:
    with Servers(LEGACY) as started:  # initdb and start only: target existing applies nothing by itself
        started.psql(EXTERNAL + "CREATE DATABASE tracksolid_db; CREATE DATABASE fleet_platform;")
        started.psql(TRACKSOLID, database="tracksolid_db")
        started.psql(FLEET, database="fleet_platform")
        yield started


def superuser_dsn(servers: Servers) -> Callable[[str, str, str], str]:
    return lambda _name, db, app: servers.superuser_dsn(db) + f" application_name={app}"


def as_app(servers: Servers) -> Callable[[str, str, str], str]:
    return lambda name, db, app: servers.dsn(APP_OF[name], db, pooled=False) + f" application_name={app}"


def test_adopting_the_legacy_server(legacy: Servers, tmp_path: Path) -> None:
    stack = ["--stack-file", str(stack_file("legacy"))]
    running = start_services(superuser_dsn(legacy))
    try:
        # 1. Discover, while the six services run as postgres.
        code, found = run_cli(discover.main, ["--dsn", legacy.superuser_dsn(), "--sample-seconds", "2.5", "--json"])
        assert code == 0
        apps = {a["name"]: a for a in found["suggestedApps"]}
        suggested = {app: (s["database"], s["access"], s["seenAs"]) for app, s in apps.items()}
        assert suggested == {
            "webhook_receiver": ("tracksolid_db", "write", "postgres"),
            "ingest_worker": ("tracksolid_db", "write", "postgres"),
            # tracksolid_db's counters show writes no sample tied to these two: write, marked for review
            "worker": ("tracksolid_db", "write", "postgres"),
            "dashboard_api": ("tracksolid_db", "write", "postgres"),
            "gateway": ("fleet_platform", "write", "postgres"),
            "cron": ("fleet_platform", "write", "postgres"),
        }
        assert apps["worker"]["review"]["problem"]
        assert apps["webhook_receiver"]["connectionLimit"] == 4  # peak 2 + margin 2
        written = {(t["database"], t["schema"], t["table"]) for t in found["tables"]}
        assert ("tracksolid_db", "tracksolid", "positions") in written and (
            "fleet_platform",
            "public",
            "jobs",
        ) in written
        assert ("tracksolid_db", "reporting", "daily") not in written  # read only
        assert {"database": "fleet_platform", "table": "public.alembic_version"} in found["migrationTables"]
        schema_owners = {(o["database"], o["schema"]): o["schemaOwner"] for o in found["owners"]}
        assert schema_owners[("tracksolid_db", "tracksolid")] == "postgres"
        # The suggestion is a whole fragment: pasted under the stack's target, server and budget, preflight passes.
        head = yaml.safe_load(stack_file("legacy").read_text())
        for key in ("databases", "apps", "externalRoles"):
            del head["config"][f"postgres-platform:{key}"]
        head["config"] |= yaml.safe_load("config:\n" + found["suggestedConfig"])["config"]
        pasted = tmp_path / "Pulumi.legacy.yaml"
        pasted.write_text(yaml.safe_dump(head))
        code, checked = run_cli(preflight.main, ["--stack-file", str(pasted), "--json"])
        assert code == 0, checked["policies"]
        assert set(head["config"]["postgres-platform:databases"]) == {"tracksolid_db", "fleet_platform"}

        # 2. The live budget sees the superuser sessions (and external roles declared but idle).
        expected = {name: count for name, _, count, _ in SERVICES}

        def sessions(report: dict[str, Any]) -> dict[str, int]:
            return {s["applicationName"]: s["count"] for s in report["superuserSessions"]}

        argv = [*stack, "--dsn", legacy.superuser_dsn(), "--json"]
        code, before = budget_when(argv, lambda report: sessions(report) == expected)
        assert sessions(before) == expected
        assert code == 1  # the apps' roles are declared but do not exist yet
        missing = "role worker_app is declared (limit 5) but missing on the server"
        assert missing in [p["problem"] for p in before["problems"]]

        # 3. The adoption, applied while they run: the plan of the stack file, as rendered SQL.
        sums = checksums(legacy)
        legacy.apply_plan()
        legacy.apply_plan()  # idempotent: a second run changes nothing and fails nowhere
    finally:
        failures = stop_services(running)
    assert failures == [] and all(s.done > 5 for s in running)
    assert checksums(legacy) == sums  # every row count and checksum unchanged, nothing dropped

    # 4. Ownership moved in the app schemas only; the stand-in extension schema and the kept view untouched.
    tracksolid = owners(legacy, "tracksolid_db")
    for name in (
        "tracksolid",
        "reporting",
        "tracksolid.positions",
        "tracksolid.positions_id_seq",
        "tracksolid.readings",
        "tracksolid.readings_2026",
        "tracksolid.batch_seq",
        "tracksolid.v_fast",
        "tracksolid.kmh(integer)",
        "reporting.daily",
        "tracksolid.schema_migrations",
    ):
        assert tracksolid[name] == "tracksolid_db_owner", name
    assert tracksolid["reporting.v_trips"] == "reporting_refresher"
    assert tracksolid["_timescaledb_catalog"] == tracksolid["_timescaledb_catalog.hypertable"] == "postgres"
    fleet = owners(legacy, "fleet_platform")
    assert fleet["public"] == fleet["public.vehicles"] == fleet["public.jobs"] == "fleet_platform_owner"
    plan = access.plan(LEGACY)
    for move in plan.ownership:
        assert (
            legacy.psql(f"\\pset tuples_only on\n{sql.ownership_check(move)};", database=move.database).strip() == "t"
        )

    # 5. Each app over its own login: exactly its level, on pre-existing and new tables.
    def run_as(app: str, db: str, statement: str) -> str | None:
        try:
            with psycopg.connect(legacy.dsn(app, db, pooled=False), autocommit=True) as conn:
                conn.execute(statement)
            return None
        except psycopg.Error as exc:
            return str(exc)

    legacy.psql(
        "CREATE TABLE tracksolid.made_by_postgres (id int); INSERT INTO tracksolid.made_by_postgres VALUES (1);",
        database="tracksolid_db",
    )  # today's migration runner still logs in as postgres
    assert run_as("ingest_app", "tracksolid_db", "CREATE TABLE tracksolid.batches (id int)") is None
    assert run_as("ingest_app", "tracksolid_db", "ALTER TABLE tracksolid.positions ADD COLUMN note text") is None
    assert run_as("ingest_app", "tracksolid_db", "INSERT INTO tracksolid.schema_migrations VALUES ('2')") is None
    for table in ("tracksolid.positions", "reporting.daily", "tracksolid.batches", "tracksolid.made_by_postgres"):
        assert run_as("worker_app", "tracksolid_db", f"SELECT * FROM {table}") is None, table
        assert "permission denied" in (run_as("dashboard_app", "tracksolid_db", f"DELETE FROM {table}") or ""), table
    for table in ("tracksolid.positions", "tracksolid.batches", "tracksolid.made_by_postgres"):
        assert run_as("webhook_app", "tracksolid_db", f"INSERT INTO {table} (id) VALUES (9999)") is None, table
    assert "must be owner" in (run_as("webhook_app", "tracksolid_db", "DROP TABLE tracksolid.batches") or "")
    assert "permission denied" in (
        run_as("webhook_app", "tracksolid_db", "INSERT INTO tracksolid.schema_migrations VALUES ('x')") or ""
    )
    assert "permission denied" in (run_as("worker_app", "fleet_platform", "SELECT * FROM public.vehicles") or "")
    assert run_as("gateway_app", "fleet_platform", "ALTER TABLE public.vehicles ADD COLUMN vin text") is None
    assert run_as("cron_app", "fleet_platform", "INSERT INTO public.jobs (name) VALUES ('x')") is None
    assert "permission denied" in (run_as("cron_app", "fleet_platform", "CREATE TABLE public.mine (id int)") or "")

    # 6. The services reconnect as their roles: no superuser sessions left, every role's slots visible.
    running = start_services(as_app(legacy))
    try:
        code, after = budget_when(argv, lambda report: report["superuserSessions"] == [])
        assert after["superuserSessions"] == [] and after["problems"] == [] and code == 0
        counts = {r["role"]: r["connections"] for r in after["roles"]}
        assert counts["webhook_app"] == 2 and counts["cron_app"] == 1
        code, grants = run_cli(live_budget.main, [*stack, "--dsn", legacy.superuser_dsn(), "--check-grants", "--json"])
        assert grants == {"problems": [], "failures": []} and code == 0
    finally:
        assert stop_services(running) == []

    # 7. Drift by hand: a limit changed, an undeclared role holding slots, a grant revoked.
    legacy.psql(
        "ALTER ROLE worker_app CONNECTION LIMIT 3; CREATE ROLE rogue LOGIN PASSWORD 'x';"
        "GRANT CONNECT ON DATABASE fleet_platform TO rogue;"
    )
    legacy.psql("REVOKE SELECT ON tracksolid.positions FROM tracksolid_db_read;", database="tracksolid_db")
    with psycopg.connect(legacy.dsn("rogue", "fleet_platform", pooled=False, password="x")):
        code, drift = run_cli(live_budget.main, [*stack, "--dsn", legacy.superuser_dsn(), "--json"])
    assert code == 1
    drifts = [p["problem"] for p in drift["problems"]]
    assert "role worker_app has CONNECTION LIMIT 3 on the server, 5 declared" in drifts
    assert "role rogue is not declared but holds 1 connection(s)" in drifts
    code, grants = run_cli(live_budget.main, [*stack, "--dsn", legacy.superuser_dsn(), "--check-grants", "--json"])
    problems = [f["problem"] for f in grants["failures"]]
    assert code == 1 and "tracksolid_db: tracksolid_db_read lacks SELECT on table tracksolid.positions" in problems
    assert "role worker_app: LOGIN, CONNECTION LIMIT 3 on the server; declared LOGIN, CONNECTION LIMIT 5" in problems
    legacy.apply_plan()  # what `pulumi up` does: the plan again
    code, grants = run_cli(live_budget.main, [*stack, "--dsn", legacy.superuser_dsn(), "--check-grants", "--json"])
    assert grants == {"problems": [], "failures": []} and code == 0


MANAGED_ADMIN = ("app_owner", "managed-admin-pw")


@pytest.fixture(scope="module")
def managed() -> Iterator[Servers]:
    assert LEGACY.existing is not None
    existing = LEGACY.existing.model_copy(
        update={
            "admin_user": "app_owner",
            "admin_superuser": False,
            "keep_owners": [],
            "object_creators": None,
        }
    )
    config = LEGACY.model_copy(update={"existing": existing, "external_roles": {}})
    with Servers(config) as started:
        # As Heroku or RDS give it: the admin owns the databases and their objects, CREATEROLE, no superuser.
        started.psql(f"CREATE ROLE app_owner LOGIN CREATEROLE CREATEDB PASSWORD '{MANAGED_ADMIN[1]}';")
        started.psql("CREATE DATABASE tracksolid_db; CREATE DATABASE fleet_platform;", login=MANAGED_ADMIN)
        body = TRACKSOLID.replace("ALTER MATERIALIZED VIEW reporting.v_trips OWNER TO reporting_refresher;", "")
        started.psql(body, database="tracksolid_db", login=MANAGED_ADMIN)
        started.psql(FLEET, database="fleet_platform", login=MANAGED_ADMIN)
        yield started


def test_a_managed_server_with_a_createrole_admin(managed: Servers) -> None:
    managed.apply_plan(login=MANAGED_ADMIN)  # as app_owner: no step needs a superuser
    managed.apply_plan(login=MANAGED_ADMIN)
    assert owners(managed, "tracksolid_db")["tracksolid.positions"] == "tracksolid_db_owner"
    with psycopg.connect(managed.dsn("worker_app", "tracksolid_db", pooled=False), autocommit=True) as conn:
        assert conn.execute("SELECT count(*) FROM tracksolid.positions").fetchone() == (500,)
        with pytest.raises(psycopg.errors.InsufficientPrivilege):
            conn.execute("INSERT INTO tracksolid.positions (device) VALUES ('x')")
    with psycopg.connect(managed.dsn("ingest_app", "tracksolid_db", pooled=False), autocommit=True) as conn:
        conn.execute("CREATE TABLE tracksolid.batches (id int)")  # as tracksolid_db_owner
    with psycopg.connect(managed.dsn("webhook_app", "tracksolid_db", pooled=False), autocommit=True) as conn:
        conn.execute("INSERT INTO tracksolid.batches VALUES (1)")  # the owner's default privileges
    logins = rows(
        managed,
        "SELECT rolname FROM pg_roles WHERE rolname LIKE '%\\_app' AND rolconnlimit > 0 "
        "AND NOT rolsuper AND NOT rolcreaterole ORDER BY 1;",
        "postgres",
    )
    assert logins == sorted(LEGACY.apps)
    # What a CREATEROLE admin cannot do: move an object someone else owns (the step names it and stops).
    managed.psql("CREATE TABLE tracksolid.root_owned (id int);", database="tracksolid_db")
    (move,) = [m for m in access.plan(managed.config).ownership if m.database == "tracksolid_db"]
    with pytest.raises(RuntimeError, match="must be owner of table root_owned"):
        managed.psql(sql.ownership_script(move, superuser=False), database="tracksolid_db", login=MANAGED_ADMIN)
