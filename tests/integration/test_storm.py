"""A small storm and a restart, on real servers with the prod config (separate servers per test)."""

from __future__ import annotations

import json
import subprocess
import sys
import threading
import time

import psycopg

from postgres_platform.harness.servers import Servers
from postgres_platform.model.images import versions_of
from postgres_platform.model.load import load_stack_values
from postgres_platform.model.stackfile import ROOT, read_stack_values, stack_file

PROD = load_stack_values(read_stack_values(stack_file("prod")))


def test_storm_of_50_clients_is_absorbed_by_the_pool() -> None:
    result = subprocess.run(
        [sys.executable, str(ROOT / "scripts" / "bench_pool.py"), "--clients", "50", "--transactions", "3", "--json"],
        capture_output=True,
        text=True,
        timeout=300,
        cwd=ROOT,
    )
    assert result.returncode == 0, result.stderr
    report = json.loads(result.stdout)
    assert set(report) == {"clients", "backendBudget", "pooled", "direct", "versions"}
    assert report["versions"] == versions_of(
        PROD.postgres.image, PROD.required_pgbouncer().image
    )  # shipped == what ran
    assert report["clients"] == 50
    # Pool + reserve per app: its limit less its direct slots (prod: every limit under pool + reserve, 20).
    assert report["backendBudget"] == sum(s.connection_limit - s.direct_slots() for s in PROD.apps.values() if s.pooled)
    pooled = report["pooled"]
    assert set(pooled) == {"errors", "maxBackends", "tps"}
    assert pooled["errors"] == 0
    assert 1 <= pooled["maxBackends"] <= report["backendBudget"]
    assert pooled["tps"] > 0


def test_pooled_clients_survive_a_postgres_restart_and_lose_no_commit() -> None:
    with Servers(PROD) as servers:
        servers.psql(
            "SET ROLE tracksolid_db_owner; CREATE TABLE tracksolid.events (id bigserial PRIMARY KEY, note text);",
            database="tracksolid_db",
        )
        committed: list[str] = []
        after_restart: list[str] = []
        restarted = threading.Event()
        stop = threading.Event()

        def writer(n: int) -> None:
            conn: psycopg.Connection[object] | None = None
            i = 0
            while not stop.is_set():
                note = f"{n}-{i}"
                i += 1
                try:
                    if conn is None or conn.closed:
                        conn = psycopg.connect(
                            servers.dsn("webhook_app", "webhook_app", pooled=True),
                            autocommit=True,
                            prepare_threshold=None,
                        )
                    with conn.transaction():
                        conn.execute("INSERT INTO tracksolid.events (note) VALUES (%s)", (note,))
                    committed.append(note)  # only what the server confirmed
                    if restarted.is_set():
                        after_restart.append(note)
                except psycopg.Error:
                    time.sleep(0.05)  # the server is restarting: retry, as an app would
            if conn is not None:
                conn.close()

        threads = [threading.Thread(target=writer, args=(n,)) for n in range(8)]
        for thread in threads:
            thread.start()
        time.sleep(0.5)
        before = len(committed)
        servers.restart_postgres()
        restarted.set()
        time.sleep(1.5)
        stop.set()
        for thread in threads:
            thread.join(30)
        assert before > 0 and after_restart, "clients must write before and resume after the restart"
        with psycopg.connect(servers.superuser_dsn("tracksolid_db")) as admin:
            stored = {row[0] for row in admin.execute("SELECT note FROM tracksolid.events")}
        assert set(committed) <= stored
