"""discover's pure parts: what a statement does, role names from application names, the suggestion."""

from __future__ import annotations

import pytest
import yaml

from postgres_platform.model.load import parse
from postgres_platform.ops import discover as discovery
from postgres_platform.ops.discover import (
    Client,
    Discovery,
    app_name,
    apps_block,
    fragment,
    margin,
    suggest,
)
from postgres_platform.ops.statement_log import PREFIX, Written, restore_sql, writes_in
from postgres_platform.ops.statements import statement_kind
from tests.helpers import valid_config


@pytest.mark.parametrize(
    ("query", "kind"),
    [
        ("SELECT * FROM t", "read"),
        ("/* insert into x */ SELECT 1", "read"),
        ("COPY (SELECT a FROM t) TO STDOUT", "read"),
        ("insert into t values (1)", "write"),
        ("WITH x AS (SELECT 1) UPDATE t SET a = 1", "write"),
        ("DELETE FROM t WHERE id = 1", "write"),
        ("COPY t FROM STDIN", "write"),
        ("SELECT * FROM jobs FOR UPDATE SKIP LOCKED", "write"),
        ("-- migrate\nCREATE TABLE t (id int)", "ddl"),
        ("ALTER TABLE t ADD COLUMN a int", "ddl"),
    ],
)
def test_statement_kind(query: str, kind: str) -> None:
    assert statement_kind(query) == kind


def test_app_names_are_valid_roles_and_unique() -> None:
    taken: set[str] = set()
    assert app_name("Webhook-Receiver", "db", taken) == "webhook_receiver"
    assert app_name("webhook receiver", "db", taken) == "webhook_receiver_2"
    assert app_name("", "fleet", taken) == "fleet_client"
    assert app_name("postgres", "fleet", taken) == "fleet_client_2"  # reserved
    assert app_name("9lives", "fleet", taken) == "fleet_client_3"  # not an identifier


def test_the_suggestion_parses_as_the_apps_of_a_stack() -> None:
    clients = [
        Client("postgres", "tracksolid_db", "webhook", True, 3, {"read", "write"}),
        Client("postgres", "tracksolid_db", "worker", True, 1, {"read"}),
        Client("legacy_user", "tracksolid_db", "worker", False, 2, {"read"}),  # one service, two roles
        Client("postgres", "fleet_platform", "gateway", True, 8, {"ddl", "write"}),
    ]
    apps = suggest(Discovery(1.0, [], clients, [], [], []))
    assert {a: (s["access"], s["connectionLimit"]) for a, s in apps.items()} == {
        "gateway": ("migrate", 10),
        "webhook": ("write", 5),
        "worker": ("read", 5),
    }
    config = valid_config()
    config["apps"] = {app: {k: s[k] for k in ("database", "access", "connectionLimit")} for app, s in apps.items()}
    assert set(parse(config).apps) == set(apps)
    assert "webhook: {database: tracksolid_db, access: write, connectionLimit: 5}  # seen: webhook" in apps_block(apps)


def test_writes_in_the_counters_never_give_read() -> None:
    """The issue's case: the samples caught no write, the counters show rows written in the database."""
    clients = [
        Client("app", "tracksolid_db", "webhook", False, 1, {"read"}),
        Client("app", "fleet_platform", "gateway", False, 1, {"read"}),
        Client("app", "quiet_db", "reporter", False, 1, {"read"}),
    ]
    tables = [
        {"database": "tracksolid_db", "schema": "public", "table": "t", "inserted": 20, "updated": 0, "deleted": 0},
        {"database": "fleet_platform", "schema": "public", "table": "t", "inserted": 0, "updated": 20, "deleted": 0},
    ]
    apps = suggest(Discovery(1.0, [], clients, tables, [], []))
    assert apps["webhook"]["access"] == "write" and apps["webhook"]["review"]["problem"]
    assert apps["gateway"]["access"] == "write" and set(apps["gateway"]["review"]) == {"problem", "fix"}
    assert apps["reporter"]["access"] == "read" and apps["reporter"]["review"] is None
    assert "REVIEW" in apps_block({"webhook": apps["webhook"]})


def test_people_and_tools_are_not_apps() -> None:
    clients = [
        Client("postgres", "postgres", "psql", True, 1, {"read"}),
        Client("postgres", "tracksolid_db", "psql", True, 1, {"write"}),
        Client("postgres", "tracksolid_db", "pgAdmin 4 - DB:tracksolid_db", True, 1, {"read"}),
        Client("postgres", "tracksolid_db", "DBeaver 24.1 - Main", True, 1, {"read"}),
        Client("app", "postgres", "webhook", False, 1, {"read"}),
        Client("app", "tracksolid_db", "webhook", False, 1, {"write"}),
    ]
    apps = suggest(Discovery(1.0, [], clients, [], [], []))
    assert {a: s["database"] for a, s in apps.items()} == {"webhook": "tracksolid_db"}


def test_the_fragment_declares_databases_apps_and_the_roles_seen() -> None:
    owners = [
        {"database": db, "schema": schema, "schemaOwner": "postgres", "objectOwners": {}}
        for db, schema in [
            ("tracksolid_db", "tracksolid"),
            ("tracksolid_db", "_timescaledb_catalog"),  # an extension's: never declared
            ("fleet_platform", "public"),
            ("postgres", "public"),
        ]
    ]
    migrations = [{"database": "fleet_platform", "table": "public.alembic_version"}]
    clients = [
        Client("postgres", "tracksolid_db", "webhook", True, 2, {"write"}),
        Client("grafana_ro", "tracksolid_db", "grafana", False, 3, {"read"}),
        Client("grafana_ro", "fleet_platform", "grafana", False, 1, {"read"}),
    ]
    found = Discovery(1.0, [], clients, [], owners, migrations)
    config = yaml.safe_load("config:\n" + fragment(found, suggest(found)))["config"]
    assert config["postgres-platform:databases"] == {
        "tracksolid_db": {"schemas": ["tracksolid"]},
        "fleet_platform": {"schemas": ["public"], "migrationTables": ["public.alembic_version"]},
    }
    assert config["postgres-platform:externalRoles"] == {"grafana_ro": {"connectionLimit": 4 + margin(4)}}
    apps = config["postgres-platform:apps"]
    assert len(apps) == 3 and {app["database"] for app in apps.values()} == {"tracksolid_db", "fleet_platform"}


def test_the_statement_log_tells_who_wrote() -> None:
    """Lines as Postgres writes them with the window's prefix after the server's own (%m [%p])."""
    ours = PREFIX.replace("%u", "postgres").replace("%d", "tracksolid_db")
    log = "\n".join(
        [
            "2026-12-03 09:00:00.001 UTC [41] "
            + ours.replace("%a", "webhook receiver")
            + "LOG:  statement: INSERT INTO tracksolid.positions (device) VALUES ('x')",
            "2026-12-03 09:00:00.002 UTC [42] "
            + ours.replace("%a", "gate|way")
            + "LOG:  execute <unnamed>: UPDATE public.vehicles SET plate = $1",
            "2026-12-03 09:00:00.003 UTC [42] " + ours.replace("%a", "gate|way") + "DETAIL:  parameters: $1 = 'B-1'",
            "2026-12-03 09:00:00.004 UTC [43] "
            + ours.replace("%a", "migrator")
            + "LOG:  statement: CREATE TABLE t (a int)",
            "2026-12-03 09:00:00.005 UTC [44] "
            + ours.replace("%a", "discover")
            + "LOG:  statement: ALTER SYSTEM SET x = 1",
            "2026-12-03 09:00:00.006 UTC [45] LOG:  checkpoint starting: time",  # no prefix of ours
        ]
    )
    assert writes_in(log, "discover") == [
        Written("postgres", "tracksolid_db", "webhook receiver", "write"),
        Written("postgres", "tracksolid_db", "gate|way", "write"),
        Written("postgres", "tracksolid_db", "migrator", "ddl"),
    ]


def test_the_settings_go_back_as_they_were() -> None:
    assert restore_sql({"log_statement": None, "log_line_prefix": "%m it's [%p] "}) == [
        "ALTER SYSTEM RESET log_statement",
        "ALTER SYSTEM SET log_line_prefix = '%m it''s [%p] '",
        "SELECT pg_catalog.pg_reload_conf()",
    ]


def test_with_the_statement_log_a_reader_stays_read() -> None:
    """The log has every write: a client it never saw writing is a reader, even in a written database."""
    clients = [
        Client("app", "tracksolid_db", "webhook", False, 1, {"write"}),
        Client("app", "tracksolid_db", "dashboard", False, 1, {"read"}),
    ]
    tables = [{"database": "tracksolid_db", "schema": "s", "table": "t", "inserted": 20, "updated": 0, "deleted": 0}]
    apps = suggest(Discovery(1.0, [], clients, tables, [], [], evidence="log"))
    assert (apps["dashboard"]["access"], apps["dashboard"]["review"]) == ("read", None)
    assert apps["webhook"]["access"] == "write"


def test_the_sampling_window_reports_its_progress(monkeypatch: pytest.MonkeyPatch) -> None:
    """What the progress bar is told adds up to the window, in steps of about a sample each."""

    class NoSessions:
        def execute(self, _query: str) -> NoSessions:
            return self

        def fetchall(self) -> list[tuple[object, ...]]:
            return []

    told: list[float] = []
    monkeypatch.setattr(discovery, "SAMPLE_INTERVAL", 0.01)
    clients, connections = discovery._watch(NoSessions(), 0.2, told.append)  # type: ignore[arg-type]
    assert (clients, connections) == ({}, [])
    assert len(told) >= 5 and sum(told) == pytest.approx(0.2, abs=0.02)
