"""A routine `pulumi up` on a live server, in containers of the shipped PostgreSQL and PgBouncer images: nothing restarts, no app fails.

Config v1 runs with pooled and direct clients looping transactions; v2 is applied the way the program
applies it (the access plan's SQL, the removed app retired, the rendered files installed by the
program's script and reloaded): an app added, limits and timeouts changed, an app that owns objects
removed, two apps' passwords rotated (alternating logins: the other login becomes active with a new
password), pg_hba changed (the new lines).

Rotating a pooled app's password in place (one login role) is what this avoids: measured here on
PgBouncer 1.18, after the reload PgBouncer opened new server logins with the SCRAM keys of clients
that had logged in with the old password, and every one failed until the clients reconnected.
"""

from __future__ import annotations

import secrets
import threading
import time
from collections.abc import Iterator
from dataclasses import dataclass, field
from typing import Any

import psycopg
import pytest

from postgres_platform.harness.servers import Servers
from postgres_platform.model.config import PlatformConfig
from postgres_platform.model.load import load_stack_values, parse
from postgres_platform.model.stackfile import read_stack_values, stack_file

PROD = load_stack_values(read_stack_values(stack_file("prod")))
TABLE = {"tracksolid_db": "tracksolid.trips", "fleet_platform": "public.vehicles"}


def base() -> dict[str, Any]:
    """Prod, with two apps on alternating logins (both logins count: room made in max_connections)."""
    raw = PROD.model_dump(by_alias=True, exclude_none=True)
    raw["postgres"]["maxConnections"] = 130
    raw["apps"]["webhook_app"]["rotation"] = 0
    raw["apps"]["cron_app"]["rotation"] = 0
    return raw


def v1() -> PlatformConfig:
    raw = base()
    raw["apps"]["leaving_app"] = {"database": "fleet_platform", "access": "migrate", "connectionLimit": 2}
    return parse(raw)


def v2() -> PlatformConfig:
    raw = base()
    raw["apps"]["billing_app"] = {"database": "fleet_platform", "access": "write", "connectionLimit": 2}
    raw["apps"]["webhook_app"] |= {"connectionLimit": 8, "statementTimeoutMs": 20000, "rotation": 1}
    raw["apps"]["cron_app"] |= {"idleInTransactionTimeoutMs": 30000, "rotation": 1}
    return parse(raw)


@dataclass
class Client:
    """One app connection looping short transactions until told to stop; every failure is kept."""

    servers: Servers
    app: str
    pooled: bool
    writes: bool
    committed: list[int] = field(default_factory=list)
    failures: list[str] = field(default_factory=list)
    transactions: int = 0

    def run(self, stop: threading.Event) -> None:
        spec = self.servers.config.apps[self.app]
        table = TABLE[spec.database]
        database = self.app if self.pooled else spec.database
        user = self.servers.config.active_login(self.app).role  # as the app's DSN output says, at its start
        try:
            with psycopg.connect(
                self.servers.dsn(user, database, pooled=self.pooled), autocommit=True, prepare_threshold=None
            ) as conn:
                deadline = time.monotonic() + 60
                while not stop.is_set() and time.monotonic() < deadline:
                    try:
                        with conn.transaction():
                            if self.writes:
                                row = conn.execute(
                                    f"INSERT INTO {table} (note) VALUES (%s) RETURNING id", (self.app,)
                                ).fetchone()
                            else:
                                row = conn.execute(f"SELECT count(*) FROM {table}").fetchone()
                        if self.writes and row:
                            self.committed.append(row[0])
                        self.transactions += 1
                    except psycopg.Error as exc:
                        self.failures.append(str(exc).strip().splitlines()[0])
                    time.sleep(0.005)
        except psycopg.Error as exc:
            self.failures.append(f"connect: {exc}")


def state(servers: Servers) -> tuple[Any, ...]:
    with psycopg.connect(servers.superuser_dsn()) as admin:
        row = admin.execute("SELECT pg_postmaster_start_time()").fetchone()
    containers = (servers.postgres_container, servers.pgbouncer_container)
    return (row[0] if row else None), *(servers.container_state(c) for c in containers)


@pytest.fixture(scope="module")
def servers() -> Iterator[Servers]:
    with Servers(v1(), tls=True) as started:
        started.psql(
            "SET ROLE tracksolid_db_owner; CREATE TABLE tracksolid.trips (id bigserial PRIMARY KEY, note text);",
            database="tracksolid_db",
        )
        started.psql(
            "SET ROLE fleet_platform_owner; CREATE TABLE public.vehicles (id bigserial PRIMARY KEY, note text);",
            database="fleet_platform",
        )
        # The app to be removed made a table of its own (as itself, not as the owner).
        started.psql(
            "SET ROLE leaving_app; CREATE TABLE public.leaving_notes (id int); INSERT INTO "
            "public.leaving_notes VALUES (1), (2);",
            database="fleet_platform",
        )
        yield started


def test_a_routine_up_restarts_nothing_and_fails_no_transaction(servers: Servers) -> None:
    staying = [
        Client(servers, "webhook_app", pooled=True, writes=True),
        Client(servers, "ingest_app", pooled=False, writes=True),
        Client(servers, "worker_app", pooled=True, writes=False),
        Client(servers, "dashboard_app", pooled=False, writes=False),
        Client(servers, "cron_app", pooled=True, writes=True),
        Client(servers, "gateway_app", pooled=False, writes=True),
    ]
    before = state(servers)
    stop = threading.Event()
    threads = [threading.Thread(target=c.run, args=(stop,)) for c in staying]
    for thread in threads:
        thread.start()
    time.sleep(1.5)

    # The newly active logins get new passwords (their generation moved); the old ones are untouched.
    rotated = {f"{app}_b": secrets.token_hex(16) for app in ("cron_app", "webhook_app")}
    servers.reconfigure(v2(), rotated)
    time.sleep(2.0)  # clients keep going on the reloaded servers
    stop.set()
    for thread in threads:
        thread.join(70)

    for client in staying:
        assert client.failures == [], (
            client.app,
            client.failures[:3],
            servers.logs(servers.pgbouncer_container)[-1500:],
        )
        assert client.transactions > 20, client.app
    assert state(servers) == before  # same postmaster start time, same containers (ids and start times)

    with psycopg.connect(servers.superuser_dsn("tracksolid_db")) as admin:
        ids = {row[0] for row in admin.execute("SELECT id FROM tracksolid.trips")}
        limit, config = admin.execute(
            "SELECT rolconnlimit, rolconfig FROM pg_roles WHERE rolname = 'webhook_app_b'"
        ).fetchone() or (None, None)
    for client in staying:
        if client.writes and servers.config.apps[client.app].database == "tracksolid_db":
            assert set(client.committed) <= ids, client.app  # every committed row is there
    assert limit == 8 and "statement_timeout=20000" in config
    with psycopg.connect(servers.superuser_dsn("fleet_platform")) as admin:
        vehicles = {row[0] for row in admin.execute("SELECT id FROM public.vehicles")}
        owner = admin.execute("SELECT tableowner FROM pg_tables WHERE tablename = 'leaving_notes'").fetchone()
        notes = admin.execute("SELECT count(*) FROM public.leaving_notes").fetchone()
        gone = admin.execute("SELECT count(*) FROM pg_roles WHERE rolname = 'leaving_app'").fetchone()
    for client in staying:
        if client.writes and servers.config.apps[client.app].database == "fleet_platform":
            assert set(client.committed) <= vehicles, client.app
    assert owner == ("fleet_platform_owner",) and notes == (2,) and gone == (0,)


def test_after_the_up_both_logins_work_and_the_new_app_gets_in(servers: Servers) -> None:
    logins = ["cron_app_a", "cron_app_b", "webhook_app_a", "webhook_app_b", "billing_app"]
    for login in logins:
        app = login.removesuffix("_a").removesuffix("_b")
        database = servers.config.apps[app].database
        for pooled in (False, True):
            with psycopg.connect(
                servers.dsn(login, app if pooled else database, pooled=pooled), prepare_threshold=None
            ) as conn:
                assert conn.execute("SELECT current_user").fetchone() == (login,)
    assert servers.config.active_login("cron_app").role == "cron_app_b"
    # pg_hba.conf was reloaded (the new app's and logins' hostssl lines admit them); a wrong password fails.
    with pytest.raises(psycopg.OperationalError, match="password authentication failed"):
        psycopg.connect(servers.dsn("cron_app_b", "fleet_platform", pooled=False, password="not-it")).close()
