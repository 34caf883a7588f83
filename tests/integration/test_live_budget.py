"""scripts/live_budget.py against a PostgreSQL 17 container of the shipped image: who holds the slots, and every drift named."""

from __future__ import annotations

import contextlib
import io
import json
import os
import pty
import re
import select
import signal
import subprocess
import sys
import time
from collections.abc import Iterator
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import psycopg
import pytest

from postgres_platform.cli import live_budget
from postgres_platform.harness.servers import Servers
from postgres_platform.model.load import load_stack_values
from postgres_platform.model.stackfile import ROOT, read_stack_values, stack_file
from postgres_platform.render import pgbouncer

# The local stack (no external roles exist on a test server), without its backups (not what this is about).
LOCAL = load_stack_values(read_stack_values(stack_file("local"))).model_copy(update={"backup": None})


@pytest.fixture(scope="module")
def servers() -> Iterator[Servers]:
    with Servers(LOCAL) as started:
        yield started


def report(servers: Servers) -> tuple[int, dict[str, object]]:
    out = io.StringIO()
    with contextlib.redirect_stdout(out):
        code = live_budget.main(["local", "--dsn", servers.superuser_dsn(), "--json"])
    result: dict[str, object] = json.loads(out.getvalue())  # stdout holds only the JSON
    return code, result


def test_a_server_as_declared_has_no_problem_and_the_contract_holds(servers: Servers) -> None:
    code, result = report(servers)
    assert set(result) == {"maxConnections", "usable", "connected", "roles", "superuserSessions", "problems"}
    assert (result["maxConnections"], result["usable"]) == (100, 97)
    assert result["problems"] == [] and code == 0
    roles = {r["role"]: r for r in result["roles"]}  # type: ignore[attr-defined]
    assert roles["worker_app"] == {
        "role": "worker_app",
        "kind": "app",
        "declared": 5,
        "serverLimit": 5,
        "connections": 0,
    }
    assert roles["pgbouncer_auth"]["kind"] == "system" and roles["postgres"]["kind"] == "superuser"


def test_superuser_sessions_undeclared_roles_and_changed_limits_are_reported(servers: Servers) -> None:
    servers.psql(
        "ALTER ROLE worker_app CONNECTION LIMIT 4; DROP ROLE IF EXISTS rogue; CREATE ROLE rogue LOGIN "
        "PASSWORD 'x' CONNECTION LIMIT 1; GRANT CONNECT ON DATABASE fleet_platform TO rogue;"
    )
    admin = servers.superuser_dsn("fleet_platform") + " application_name=webhook-service"
    held = [psycopg.connect(admin) for _ in range(3)]
    held.append(psycopg.connect(servers.dsn("rogue", "fleet_platform", pooled=False, password="x")))
    try:
        code, result = report(servers)
    finally:
        for conn in held:
            conn.close()
        servers.psql("ALTER ROLE worker_app CONNECTION LIMIT 5;")
    assert code == 1
    assert {
        "database": "fleet_platform",
        "applicationName": "webhook-service",
        "clientAddr": "127.0.0.1",
        "count": 3,
    } in result["superuserSessions"]  # type: ignore[operator]
    problems = {p["problem"]: p["fix"] for p in result["problems"]}  # type: ignore[attr-defined]
    assert all(set(p) == {"problem", "fix"} for p in result["problems"])  # type: ignore[attr-defined]
    limit = problems["role worker_app has CONNECTION LIMIT 4 on the server, 5 declared"]
    assert "`pulumi up`" in limit and "apps.worker_app.connectionLimit to 4" in limit
    assert (
        "under externalRoles (rogue: connectionLimit: 1"
        in problems["role rogue is not declared but holds 1 connection(s)"]
    )
    assert "--watch" in problems["role rogue is at its limit: 1 of 1"]
    rogue = next(r for r in result["roles"] if r["role"] == "rogue")  # type: ignore[attr-defined]
    assert rogue == {"role": "rogue", "kind": "undeclared", "declared": None, "serverLimit": 1, "connections": 1}
    assert result["connected"] >= 4  # type: ignore[operator]


def test_clients_waiting_in_a_full_pool_are_named(servers: Servers, tmp_path: Path) -> None:
    """More clients than worker_app's pool holds, each in a 4 s query: the rest wait, and live says whose."""
    (pool,) = [p for p in pgbouncer.pools(LOCAL) if p.name == "worker_app"]
    clients = pool.max_server_connections + 2  # past the pool and its reserve: two must wait

    def hold() -> None:
        with psycopg.connect(servers.dsn("worker_app", pool.name, pooled=True), autocommit=True) as conn:
            conn.execute("SELECT pg_catalog.pg_sleep(4)")

    console = tmp_path / "console.dsn"
    console.write_text(servers.console_dsn())
    console.chmod(0o600)
    with ThreadPoolExecutor(clients) as pool_of_clients:
        held = [pool_of_clients.submit(hold) for _ in range(clients)]
        time.sleep(1.5)
        out = io.StringIO()
        with contextlib.redirect_stdout(out):
            code = live_budget.main(
                ["local", "--dsn", servers.superuser_dsn(), "--pgbouncer-dsn-file", str(console), "--json"]
            )
        for done in held:
            done.result(timeout=30)
    result = json.loads(out.getvalue())
    (pooled,) = [p for p in result["pgbouncerPools"] if p["user"] == "worker_app"]
    assert pooled["waiting"] >= 1 and code == 1
    (waiting,) = [p for p in result["problems"] if "of worker_app wait in PgBouncer's" in p["problem"]]
    assert "apps.worker_app.connectionLimit" in waiting["fix"], waiting


def test_watch_on_a_terminal_redraws_a_table_and_ctrl_c_restores_it(servers: Servers, tmp_path: Path) -> None:
    """`live --watch` with a (pseudo-)terminal as stdout: the live table, then Ctrl-C: exit 130, no traceback,
    the cursor shown again."""
    path = tmp_path / "admin.dsn"
    path.write_text(servers.superuser_dsn())
    path.chmod(0o600)
    master, slave = pty.openpty()
    argv = [
        sys.executable,
        str(ROOT / "scripts" / "live_budget.py"),
        "local",
        "--dsn-file",
        str(path),
        "--watch",
        "0.5",
    ]
    watch = subprocess.Popen(argv, stdout=slave, stderr=slave, env={**os.environ, "COLUMNS": "120", "TERM": "xterm"})
    os.close(slave)
    seen = b""

    def read_for(seconds: float) -> None:
        nonlocal seen
        deadline = time.monotonic() + seconds
        while time.monotonic() < deadline:
            if select.select([master], [], [], 0.1)[0]:
                try:
                    seen += os.read(master, 65536)
                except OSError:  # the child is gone
                    return

    try:
        deadline = time.monotonic() + 30
        while time.monotonic() < deadline and seen.count(b"live budget at") < 2:
            read_for(0.5)
        watch.send_signal(signal.SIGINT)
        watch.wait(timeout=30)
        read_for(0.5)
    finally:
        if watch.poll() is None:
            watch.kill()
            watch.wait()
        os.close(master)
    text = seen.decode(errors="replace")
    assert text.count("live budget at") >= 2, text  # redrawn: one title per refresh
    # Its row, whatever the other tests left (PgBouncer keeps its server connections a while).
    assert re.search(r"worker_app +│ app +│ +\d/5 │", text) and "━" in text, text
    assert "no problems" in text or "  fix: " in text
    assert "---" not in text  # not the piped output
    assert watch.returncode == 130 and "Traceback" not in text and "KeyboardInterrupt" not in text, text
    assert "\x1b[?25h" in text  # leaving the live view showed the cursor again
