"""In containers of the shipped images (PostgreSQL 17.12, PgBouncer 1.24.1), with the prod stack's plan and
rendered configs applied.

Each app works over its direct and its pooled DSN exactly as its level allows; limits hold; the
PgBouncer lookup function gives nothing away. Skipped, with the reason, without a Docker engine and the images.
"""

from __future__ import annotations

import contextlib
import json
import secrets
import subprocess
import sys
import threading
import time
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

import psycopg
import pytest

from postgres_platform.cli.pg_settings import read_table
from postgres_platform.harness.servers import Servers
from postgres_platform.model import access
from postgres_platform.model.config import PlatformConfig
from postgres_platform.model.load import load_stack_values, parse
from postgres_platform.model.settings import TABLE_FILE
from postgres_platform.model.stackfile import ROOT, read_stack_values, stack_file
from postgres_platform.render import sql
from postgres_platform.render.postgres import RESTART_SETTINGS
from postgres_platform.render.scram import stable_verifier

PROD = load_stack_values(read_stack_values(stack_file("prod")))
READ, WRITE, MIGRATE = ("worker_app", "dashboard_app"), ("webhook_app", "ingest_app", "cron_app"), ("gateway_app",)
OTHER_DB = {"tracksolid_db": "fleet_platform", "fleet_platform": "tracksolid_db"}
# A table per app schema, created by the owner role as a migration would (before any re-grant).
TABLES = {"tracksolid_db": ("tracksolid.trips", "reporting.daily"), "fleet_platform": ("public.vehicles",)}


def _create_tables(servers: Servers, config: PlatformConfig) -> None:
    for database, tables in TABLES.items():
        owner = f"{database}_owner"
        statements = [f"SET ROLE {owner};"]
        for table in tables:
            statements.append(f"CREATE TABLE IF NOT EXISTS {table} (id bigserial PRIMARY KEY, note text);")
            statements.append(f"INSERT INTO {table} (note) VALUES ('seed');")
        for table in config.databases[database].migration_table_names():
            statements.append(f"CREATE TABLE IF NOT EXISTS {table} (version text);")
        servers.psql("\n".join(statements), database=database)


@pytest.fixture(scope="module")
def servers() -> Iterator[Servers]:
    with Servers(PROD) as started:
        _create_tables(started, PROD)
        # The next `pulumi up`: the re-apply step revokes writes on migration tables created since.
        started.psql(
            "\n".join(
                f"\\connect {db.name}\n"
                + sql.revoke_migration_writes([r for r in access.plan(PROD).migration_revokes if r.database == db.name])
                for db in access.plan(PROD).databases
            )
        )
        yield started


@contextmanager
def connect(
    servers: Servers, app: str, *, pooled: bool, database: str | None = None
) -> Iterator[psycopg.Connection[Any]]:
    db = database or (app if pooled else PROD.apps[app].database)
    # Transaction pooling: no server-side prepared statements.
    with psycopg.connect(servers.dsn(app, db, pooled=pooled), autocommit=True, prepare_threshold=None) as conn:
        yield conn


def allowed(conn: psycopg.Connection[Any], statement: str) -> bool:
    """Run one statement in its own transaction; False if the server refused it for privileges."""
    try:
        with conn.transaction():
            conn.execute(statement)
        return True
    except (psycopg.errors.InsufficientPrivilege, psycopg.errors.WrongObjectType) as exc:
        assert "permission denied" in str(exc) or "must be owner" in str(exc), exc
        return False


def own_tables(app: str) -> tuple[str, ...]:
    return TABLES[PROD.apps[app].database]


PATHS = [pytest.param(False, id="direct"), pytest.param(True, id="pooled")]


@pytest.mark.parametrize("pooled", PATHS)
@pytest.mark.parametrize("app", READ)
def test_read_roles_select_and_nothing_more(servers: Servers, app: str, pooled: bool) -> None:
    with connect(servers, app, pooled=pooled) as conn:
        assert conn.execute("SELECT current_user").fetchone() == (app,)
        for table in own_tables(app):
            assert allowed(conn, f"SELECT count(*) FROM {table}")
            assert not allowed(conn, f"INSERT INTO {table} (note) VALUES ('x')")
            assert not allowed(conn, f"UPDATE {table} SET note = 'x'")
            assert not allowed(conn, f"DELETE FROM {table}")
            assert not allowed(conn, f"SELECT nextval('{table}_id_seq')")
            schema = table.split(".")[0]
            assert not allowed(conn, f"CREATE TABLE {schema}.sneaky (id int)")


@pytest.mark.parametrize("pooled", PATHS)
@pytest.mark.parametrize("app", WRITE)
def test_write_roles_dml_and_nextval_but_no_ddl(servers: Servers, app: str, pooled: bool) -> None:
    with connect(servers, app, pooled=pooled) as conn:
        for table in own_tables(app):
            assert allowed(conn, f"INSERT INTO {table} (note) VALUES ('{app}')")
            assert allowed(conn, f"UPDATE {table} SET note = note WHERE note = '{app}'")
            assert allowed(conn, f"DELETE FROM {table} WHERE note = '{app}'")
            assert allowed(conn, f"SELECT nextval('{table}_id_seq')")
            schema = table.split(".")[0]
            assert not allowed(conn, f"CREATE TABLE {schema}.sneaky (id int)")
            assert not allowed(conn, f"ALTER TABLE {table} ADD COLUMN sneaky int")
            assert not allowed(conn, f"DROP TABLE {table}")
            assert not allowed(conn, f"TRUNCATE {table}")


@pytest.mark.parametrize("pooled", PATHS)
def test_migrate_role_runs_ddl_in_its_schemas(servers: Servers, pooled: bool) -> None:
    suffix = "pooled" if pooled else "direct"
    with connect(servers, "gateway_app", pooled=pooled) as conn:
        assert allowed(conn, f"CREATE TABLE public.routes_{suffix} (id bigserial PRIMARY KEY)")
        assert allowed(conn, "ALTER TABLE public.vehicles ADD COLUMN IF NOT EXISTS plate text")
        assert allowed(conn, f"DROP TABLE public.routes_{suffix}")
        assert allowed(conn, "INSERT INTO public.alembic_version VALUES ('0001')")  # migrations stamp it


@pytest.mark.parametrize("app", READ + WRITE + MIGRATE)
def test_every_app_is_refused_on_the_other_database(servers: Servers, app: str) -> None:
    other = OTHER_DB[PROD.apps[app].database]
    with pytest.raises(psycopg.OperationalError, match="permission denied for database"):
        psycopg.connect(servers.dsn(app, other, pooled=False)).close()
    other_pool = next(a for a, spec in PROD.apps.items() if spec.database == other)
    # PgBouncer's HBA has no line for this app on that pool (1.24 says so in these words; 1.18 said "login rejected").
    with pytest.raises(psycopg.OperationalError, match="no authentication method is found"):
        psycopg.connect(servers.dsn(app, other_pool, pooled=True)).close()


@pytest.mark.parametrize("app", READ + WRITE)
def test_non_migrate_apps_cannot_create_in_public(servers: Servers, app: str) -> None:
    with connect(servers, app, pooled=False) as conn:
        assert not allowed(conn, "CREATE TABLE public.sneaky (id int)")


@pytest.mark.parametrize("pooled", PATHS)
@pytest.mark.parametrize("app", READ + WRITE)
def test_migration_tables_cannot_be_written_by_apps(servers: Servers, app: str, pooled: bool) -> None:
    database = PROD.apps[app].database
    with connect(servers, app, pooled=pooled) as conn:
        for table in PROD.databases[database].migration_table_names():
            assert allowed(conn, f"SELECT count(*) FROM {table}")
            assert not allowed(conn, f"INSERT INTO {table} VALUES ('9999')")
            assert not allowed(conn, f"DELETE FROM {table}")


def test_no_grant_drift_for_tables_created_later(servers: Servers) -> None:
    """A migration (as the owner, and as the migrate role) adds tables: usable at once, no re-grant."""
    servers.psql(
        "SET ROLE tracksolid_db_owner; CREATE TABLE tracksolid.later (id bigserial PRIMARY KEY, note text);",
        database="tracksolid_db",
    )
    with connect(servers, "gateway_app", pooled=False) as conn:
        conn.execute("CREATE TABLE public.later_by_migrator (id bigserial PRIMARY KEY, note text)")
    for app, table in [("webhook_app", "tracksolid.later"), ("cron_app", "public.later_by_migrator")]:
        with connect(servers, app, pooled=True) as conn:
            assert allowed(conn, f"INSERT INTO {table} (note) VALUES ('new')")
            assert allowed(conn, f"SELECT nextval('{table}_id_seq')")
    with connect(servers, "worker_app", pooled=True) as conn:
        assert allowed(conn, "SELECT count(*) FROM tracksolid.later")
        assert not allowed(conn, "INSERT INTO tracksolid.later (note) VALUES ('x')")
    # A migrate app creates as the owner (its role's SET ROLE default), direct and pooled alike.
    with connect(servers, "gateway_app", pooled=True) as conn:
        conn.execute("CREATE TABLE public.later_pooled (id int)")
    with psycopg.connect(servers.superuser_dsn("fleet_platform")) as admin:
        owners = admin.execute(
            "SELECT tablename, tableowner FROM pg_tables WHERE tablename IN ('later_by_migrator', 'later_pooled')"
        ).fetchall()
    assert sorted(owners) == [("later_by_migrator", "fleet_platform_owner"), ("later_pooled", "fleet_platform_owner")]


def test_a_schema_subset_app_reaches_exactly_its_schemas() -> None:
    raw = PROD.model_dump(by_alias=True, exclude_none=True)
    raw["apps"]["reporting_app"] = {
        "database": "tracksolid_db",
        "access": "write",
        "connectionLimit": 2,
        "schemas": ["reporting"],
    }
    raw["externalRoles"]["dashboard_ro"]["connectionLimit"] = 9  # room in the budget for it
    config = parse(raw)
    with Servers(config) as subset:
        _create_tables(subset, config)
        for pooled in (False, True):
            with psycopg.connect(
                subset.dsn("reporting_app", "reporting_app" if pooled else "tracksolid_db", pooled=pooled),
                autocommit=True,
                prepare_threshold=None,
            ) as conn:
                assert allowed(conn, "INSERT INTO reporting.daily (note) VALUES ('subset')")
                assert not allowed(conn, "SELECT count(*) FROM tracksolid.trips")
                assert not allowed(conn, "INSERT INTO tracksolid.trips (note) VALUES ('x')")
                assert not allowed(conn, "CREATE TABLE reporting.sneaky (id int)")


def console(servers: Servers, command: str) -> list[dict[str, Any]]:
    """A command on PgBouncer's admin console, its rows as dicts."""
    with psycopg.connect(servers.console_dsn(), autocommit=True, prepare_threshold=None) as conn:
        cursor = conn.execute(command)
        columns = [c.name for c in cursor.description or ()]
        return [dict(zip(columns, row, strict=True)) for row in cursor.fetchall()] if columns else []


def test_connection_limit_holds_and_superuser_still_gets_in(servers: Servers) -> None:
    app = "worker_app"
    limit = PROD.apps[app].connection_limit
    # Idle pooled server connections hold the role's slots too: drop them for a clean count.
    console(servers, f"KILL {app}")
    console(servers, f"RESUME {app}")
    held = [psycopg.connect(servers.dsn(app, "tracksolid_db", pooled=False)) for _ in range(limit)]
    try:
        with pytest.raises(psycopg.OperationalError, match="too many connections for role"):
            psycopg.connect(servers.dsn(app, "tracksolid_db", pooled=False)).close()
        with psycopg.connect(servers.superuser_dsn()) as admin:
            assert admin.execute("SELECT count(*) FROM pg_stat_activity WHERE usename = %s", (app,)).fetchone() == (
                limit,
            )
    finally:
        for conn in held:
            conn.close()


def test_lookup_function_returns_nothing_for_privileged_or_disabled_roles(servers: Servers) -> None:
    servers.psql(
        "DROP ROLE IF EXISTS t_repl; CREATE ROLE t_repl LOGIN REPLICATION PASSWORD 'x';"
        "DROP ROLE IF EXISTS t_expired; CREATE ROLE t_expired LOGIN PASSWORD 'x' VALID UNTIL '2001-01-01';"
        "DROP ROLE IF EXISTS t_bypass; CREATE ROLE t_bypass LOGIN BYPASSRLS PASSWORD 'x';"
    )
    with psycopg.connect(servers.dsn("pgbouncer_auth", "tracksolid_db", pooled=False)) as conn:

        def lookup(role: str) -> list[tuple[str, str]]:
            return conn.execute("SELECT usename, passwd FROM pgbouncer.get_auth(%s)", (role,)).fetchall()

        (row,) = lookup("webhook_app")
        assert row[0] == "webhook_app" and row[1].startswith("SCRAM-SHA-256$")
        for role in ("postgres", "tracksolid_db_owner", "t_repl", "t_expired", "t_bypass", "pgbouncer_auth", "nobody"):
            assert lookup(role) == [], role
        with pytest.raises(psycopg.errors.InsufficientPrivilege):
            conn.execute("SELECT rolpassword FROM pg_authid")


def test_lookup_function_cannot_be_hijacked_through_search_path(servers: Servers) -> None:
    # A schema earlier in the caller's search_path holding look-alikes of what the body uses.
    servers.psql(
        "CREATE SCHEMA IF NOT EXISTS hijack;"
        "CREATE TABLE IF NOT EXISTS hijack.pg_authid AS SELECT * FROM pg_catalog.pg_authid WITH NO DATA;"
        "INSERT INTO hijack.pg_authid SELECT * FROM pg_catalog.pg_authid WHERE rolname = 'postgres';"
        "UPDATE hijack.pg_authid SET rolsuper = false, rolpassword = 'forged';"
        "CREATE OR REPLACE FUNCTION hijack.now() RETURNS timestamptz LANGUAGE sql AS $$ SELECT 'infinity'::timestamptz $$;"
        "GRANT USAGE ON SCHEMA hijack TO PUBLIC; GRANT SELECT ON hijack.pg_authid TO PUBLIC;",
        database="tracksolid_db",
    )
    with psycopg.connect(servers.dsn("pgbouncer_auth", "tracksolid_db", pooled=False)) as conn:
        conn.execute("SET search_path = hijack, pg_catalog, public")
        assert conn.execute("SELECT * FROM pgbouncer.get_auth('postgres')").fetchall() == []
        (row,) = conn.execute("SELECT * FROM pgbouncer.get_auth('webhook_app')").fetchall()
        assert row[1].startswith("SCRAM-SHA-256$")
        config = conn.execute(
            "SELECT proconfig, prosecdef FROM pg_proc WHERE oid = 'pgbouncer.get_auth(text)'::regprocedure"
        ).fetchone()
    assert config == (["search_path=pg_catalog, pg_temp"], True)
    with connect(servers, "webhook_app", pooled=False) as conn:
        assert not allowed(conn, "SELECT * FROM pgbouncer.get_auth('webhook_app')")


def test_only_the_auth_roles_secret_is_in_the_rendered_files(servers: Servers) -> None:
    files = "\n".join(servers.rendered_files().values())
    assert servers.passwords["pgbouncer_auth"] in files
    with psycopg.connect(servers.superuser_dsn()) as admin:
        rows = admin.execute("SELECT rolname, rolpassword FROM pg_authid WHERE rolpassword IS NOT NULL").fetchall()
    secrets: dict[str, str] = dict(rows)
    for app in PROD.apps:
        assert servers.passwords[app] not in files
        assert secrets[app] not in files
    assert servers.superuser_password not in files


def wait_for_no_backends(servers: Servers, role: str) -> None:
    """Closed connections' backends exit a moment later; until then they hold the role's slots."""
    with psycopg.connect(servers.superuser_dsn(), autocommit=True) as admin:
        for _ in range(200):
            row = admin.execute("SELECT count(*) FROM pg_stat_activity WHERE usename = %s", (role,)).fetchone()
            if row == (0,):
                return
            time.sleep(0.02)
    raise AssertionError(f"{role} still has backends")


def test_pgbouncer_pools_in_transaction_mode_and_caps_each_app(servers: Servers) -> None:
    app, clients = "worker_app", 30
    limit = PROD.apps[app].connection_limit
    console(servers, f"KILL {app}")
    console(servers, f"RESUME {app}")
    wait_for_no_backends(servers, app)
    errors: list[BaseException] = []
    peak = [0]
    stop = threading.Event()

    def client() -> None:
        try:
            with connect(servers, app, pooled=True) as conn:
                for _ in range(10):
                    with conn.transaction():
                        conn.execute("SELECT pg_sleep(0.01)")
        except BaseException as exc:  # pragma: no cover - reported below
            errors.append(exc)

    def sample() -> None:
        with psycopg.connect(servers.superuser_dsn(), autocommit=True) as admin:
            while not stop.is_set():
                row = admin.execute("SELECT count(*) FROM pg_stat_activity WHERE usename = %s", (app,)).fetchone()
                peak[0] = max(peak[0], row[0] if row else 0)
                time.sleep(0.005)

    sampler = threading.Thread(target=sample)
    sampler.start()
    threads = [threading.Thread(target=client) for _ in range(clients)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(60)
    stop.set()
    sampler.join()
    assert errors == [], servers.logs(servers.pgbouncer_container)[-2000:]  # the pooler says why
    assert 1 <= peak[0] <= limit
    mine = [p for p in console(servers, "SHOW POOLS") if p["database"] == app and p["user"] == app]
    assert mine and mine[0]["pool_mode"] == "transaction"


def test_render_sql_twice_changes_nothing(servers: Servers) -> None:
    snapshot = """
        SELECT 'role', rolname || rolcanlogin::text || rolsuper::text || rolconnlimit::text
               || coalesce(array_to_string(rolconfig, ','), '') FROM pg_roles
        UNION ALL SELECT 'db', datname || datdba::regrole::text || coalesce(datacl::text, '') FROM pg_database
        UNION ALL SELECT 'ns', nspname || nspowner::regrole::text || coalesce(nspacl::text, '') FROM pg_namespace
        UNION ALL SELECT 'rel', oid::regclass::text || coalesce(relacl::text, '') FROM pg_class WHERE relnamespace > 16384
        UNION ALL SELECT 'def', defaclrole::regrole::text || defaclacl::text FROM pg_default_acl
        UNION ALL SELECT 'fn', oid::regprocedure::text || coalesce(proacl::text, '') || coalesce(proconfig::text, '')
               FROM pg_proc WHERE pronamespace > 16384
        ORDER BY 1, 2
    """

    def state() -> list[tuple[str, str]]:
        rows: list[tuple[str, str]] = []
        for database in ("tracksolid_db", "fleet_platform"):
            with psycopg.connect(servers.superuser_dsn(database)) as admin:
                rows += [(database, f"{kind}:{value}") for kind, value in admin.execute(snapshot).fetchall()]
        return rows

    before = state()
    servers.apply_plan()
    assert state() == before


def test_the_sql_route_sets_verifiers_from_a_variables_file_and_apps_log_in_direct_and_pooled(servers: Servers) -> None:
    """The documented route (docs/access-model.md): passwords go in on stdin, become SCRAM verifiers in a psql file, never argv."""
    new = secrets.token_hex(16)
    made = subprocess.run(
        [sys.executable, str(ROOT / "scripts" / "render_sql.py"), "prod", "--psql-variables"],
        input=f"worker_app {new}\n",
        capture_output=True,
        text=True,
        check=True,
    )
    assert new not in made.stdout and made.stdout.startswith("\\set worker_app_password 'SCRAM-SHA-256$4096:")
    servers.psql(made.stdout + "ALTER ROLE worker_app WITH PASSWORD :'worker_app_password';")
    servers.passwords["worker_app"] = new
    console(servers, "KILL worker_app")  # earlier tests' idle pooled connections hold worker_app's 5 slots
    console(servers, "RESUME worker_app")
    wait_for_no_backends(servers, "worker_app")
    for pooled in (False, True):
        database = "worker_app" if pooled else "tracksolid_db"
        with psycopg.connect(servers.dsn("worker_app", database, pooled=pooled), prepare_threshold=None) as conn:
            assert conn.execute("SELECT current_user").fetchone() == ("worker_app",)
    with psycopg.connect(servers.superuser_dsn()) as admin:
        stored = admin.execute("SELECT rolpassword FROM pg_authid WHERE rolname = 'worker_app'").fetchone()
    assert stored is not None and stored[0] == stable_verifier("worker_app", new)  # stored as is


def test_the_settings_table_is_the_shipped_servers_own(servers: Servers) -> None:
    """model/pg_settings.json (names, types, units, ranges, enums, contexts) is what this image's server
    reports: stale for a new image, it fails here (regenerate: scripts/pg_settings.py)."""
    assert read_table(servers.superuser_dsn()) == json.loads(TABLE_FILE.read_text())
    assert {"transaction_buffers", "max_connections"} <= RESTART_SETTINGS and "work_mem" not in RESTART_SETTINGS


def test_no_secret_on_a_command_line_or_as_plaintext_on_disk(servers: Servers) -> None:
    """While the plan is applied (psql in the container, verifiers as variables), no process's argv
    holds a password or verifier; the superuser's password file holds only its verifier."""
    secret_values = [
        *servers.passwords.values(),
        servers.superuser_password,
        *(stable_verifier(role, pw) for role, pw in servers.passwords.items()),
    ]
    seen: list[str] = []
    done = threading.Event()

    def sample() -> None:
        while not done.is_set():
            for cmdline in Path("/proc").glob("[0-9]*/cmdline"):
                with contextlib.suppress(OSError):
                    seen.append(cmdline.read_bytes().replace(b"\0", b" ").decode(errors="replace"))
            time.sleep(0.005)

    sampler = threading.Thread(target=sample)
    sampler.start()
    try:
        for _ in range(3):
            servers.apply_plan()
    finally:
        done.set()
        sampler.join(30)
    assert any("psql" in line for line in seen)  # the sampler saw the plan's processes
    assert not [line for line in seen if any(value in line for value in secret_values)]
    on_disk = (servers.root / "postgres" / "superuser.password").read_text()
    assert (
        on_disk == stable_verifier("postgres", servers.superuser_password) and servers.superuser_password not in on_disk
    )
