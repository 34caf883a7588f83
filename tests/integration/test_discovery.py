"""Discovery's write attribution on a real server (the shipped PostgreSQL 17 image): the issue's case.

Short autocommit writes between two samples are what a sample misses. From samples alone such a
client is never suggested `read` (the database's counters show the writes: `write` and REVIEW); a
session inside a transaction that wrote is `write` by its transaction ID; with --log-writes the
server's statement log says who wrote, so a reader in a written database is `read` with nothing to
review; the logging settings are put back afterwards, after an error and after Ctrl-C.
"""

from __future__ import annotations

import contextlib
import io
import json
import threading
import time
from collections.abc import Iterator
from typing import Any

import psycopg
import pytest

from postgres_platform.cli import discover
from postgres_platform.harness.servers import Servers
from postgres_platform.ops import discover as discovery
from tests.integration.test_adoption import EXTERNAL, FLEET, LEGACY, TRACKSOLID

LEDGER = "CREATE TABLE entries (id serial PRIMARY KEY, amount int); INSERT INTO entries (amount) VALUES (1);"
# (application_name, database, statement): one short autocommit statement every WRITE_INTERVAL.
CLIENTS = [
    ("webhook", "tracksolid_db", "INSERT INTO tracksolid.positions (device, speed) VALUES ('hook', 1)"),
    ("gateway", "fleet_platform", "UPDATE public.vehicles SET plate = plate WHERE id = 1"),
    ("dashboard", "tracksolid_db", "SELECT sum(trips) FROM reporting.daily"),
    ("auditor", "ledger_db", "SELECT count(*) FROM entries"),
]
WRITE_INTERVAL = 0.35  # seconds: far more than a statement takes, so a 0.1 s sample rarely sees one
MAX_STATEMENTS = 100  # per client: the loops are bounded in count as well as by the test
SETTINGS = "SELECT current_setting('log_statement'), current_setting('log_line_prefix')"
AUTO_CONF = "SELECT name FROM pg_file_settings WHERE sourcefile LIKE '%postgresql.auto.conf' ORDER BY 1"


class Clients:
    """The clients above, as postgres (the runbook's case), each its own session; and one session that
    wrote inside a transaction left open (its last statement a SELECT)."""

    def __init__(self, server: Servers) -> None:
        self.stop = threading.Event()
        self.server = server
        self.threads = [
            threading.Thread(target=self._loop, args=(app, db, statement), daemon=True)
            for app, db, statement in CLIENTS
        ]
        self.open = psycopg.connect(server.superuser_dsn("ledger_db") + " application_name=bookkeeper")
        self.open.execute("INSERT INTO entries (amount) VALUES (2)")
        self.open.execute("SELECT 1")  # idle in transaction now, with a transaction ID
        self.psql = psycopg.connect(server.superuser_dsn() + " application_name=psql", autocommit=True)
        for thread in self.threads:
            thread.start()
        time.sleep(0.3)

    def _loop(self, app: str, database: str, statement: str) -> None:
        with psycopg.connect(self.server.superuser_dsn(database) + f" application_name={app}", autocommit=True) as c:
            for _ in range(MAX_STATEMENTS):
                if self.stop.wait(WRITE_INTERVAL):
                    return
                c.execute(statement)

    def close(self) -> None:
        self.stop.set()
        for thread in self.threads:
            thread.join(10)
        self.open.rollback()
        self.open.close()
        self.psql.close()


@pytest.fixture(scope="module")
def server() -> Iterator[Servers]:
    with Servers(LEGACY) as started:
        started.psql(
            EXTERNAL + "CREATE DATABASE tracksolid_db; CREATE DATABASE fleet_platform; CREATE DATABASE ledger_db;"
        )
        started.psql(TRACKSOLID, database="tracksolid_db")
        started.psql(FLEET, database="fleet_platform")
        started.psql(LEDGER, database="ledger_db")
        yield started


@contextlib.contextmanager
def running(server: Servers) -> Iterator[None]:
    clients = Clients(server)
    try:
        yield
    finally:
        clients.close()


def run(argv: list[str]) -> tuple[int, dict[str, Any]]:
    out = io.StringIO()
    with contextlib.redirect_stdout(out):
        code = discover.main(argv)
    return code, json.loads(out.getvalue())


def suggested(report: dict[str, Any]) -> dict[str, tuple[str, bool]]:
    """application name -> (access, marked for review)."""
    return {a["applicationName"]: (a["access"], a["review"] is not None) for a in report["suggestedApps"]}


def settings(server: Servers) -> tuple[str, list[str]]:
    with psycopg.connect(server.superuser_dsn(), autocommit=True) as conn:
        now = conn.execute(SETTINGS).fetchone()
        auto = [str(r[0]) for r in conn.execute(AUTO_CONF).fetchall()]
    return str(now), auto


def test_samples_never_suggest_read_for_a_written_database(server: Servers) -> None:
    with running(server):
        code, report = run(["--dsn", server.superuser_dsn(), "--sample-seconds", "2.5", "--json"])
    assert code == 0 and report["evidence"] == "samples"
    apps = suggested(report)
    assert apps["webhook"][0] == "write" and apps["gateway"][0] == "write"
    assert apps["dashboard"] == ("write", True)  # its database was written, by whom samples cannot say
    assert apps["bookkeeper"] == ("write", False)  # its open transaction holds a transaction ID
    assert apps["auditor"] == ("read", False)  # ledger_db's counters show nothing committed in the window
    assert "psql" not in apps and {(t["applicationName"], t["database"]) for t in report["tools"]} == {
        ("psql", "postgres")
    }


def test_log_writes_needs_a_log_it_can_read(server: Servers) -> None:
    before = settings(server)
    code, report = run(["--dsn", server.superuser_dsn(), "--sample-seconds", "0.2", "--log-writes", "--json"])
    assert code == 2 and "logging_collector" in report["error"] and "\n" not in report["error"]
    assert settings(server) == before


def with_collector(server: Servers) -> None:
    with psycopg.connect(server.superuser_dsn(), autocommit=True) as conn:
        conn.execute("ALTER SYSTEM SET logging_collector = on")
    server.restart_postgres()


def test_log_writes_says_who_wrote_and_puts_the_settings_back(server: Servers) -> None:
    with_collector(server)
    before = settings(server)
    with running(server):
        code, report = run(["--dsn", server.superuser_dsn(), "--sample-seconds", "2.5", "--log-writes", "--json"])
    assert code == 0 and report["evidence"] == "log"
    apps = suggested(report)
    assert apps["webhook"] == ("write", False) and apps["gateway"] == ("write", False)
    assert apps["dashboard"] == ("read", False)  # the log saw every write in tracksolid_db: none was its
    assert apps["auditor"] == ("read", False) and apps["bookkeeper"] == ("write", False)
    assert settings(server) == before
    assert before[1] == ["logging_collector"]


def test_ctrl_c_puts_the_settings_back(server: Servers, monkeypatch: pytest.MonkeyPatch) -> None:
    with_collector(server)
    before = settings(server)
    during: list[tuple[str, list[str]]] = []

    def interrupted(*_args: object) -> None:
        during.append(settings(server))
        raise KeyboardInterrupt

    monkeypatch.setattr(discovery, "_watch", interrupted)
    code = discover.main(["--dsn", server.superuser_dsn(), "--sample-seconds", "5", "--log-writes"])
    assert code == 130
    assert during and "mod" in during[0][0]  # it was logging when interrupted
    assert settings(server) == before
