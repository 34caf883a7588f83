"""An app's pool never takes its whole CONNECTION LIMIT, and a pooled client that cannot get a server
connection fails within the stack's queryWaitTimeout with PgBouncer's message (containers of the
shipped images, the prod config)."""

from __future__ import annotations

import time
from collections.abc import Iterator

import psycopg
import pytest

from postgres_platform.harness.servers import Servers
from postgres_platform.model.load import load_stack_values
from postgres_platform.model.stackfile import read_stack_values, stack_file
from postgres_platform.render.pgbouncer import pools

PROD = load_stack_values(read_stack_values(stack_file("prod")))
# No reserve pool: it opens only after reserve_pool_timeout (5 s), which would blur the figures.
CONFIG = PROD.model_copy(
    update={"pgbouncer": PROD.required_pgbouncer().model_copy(update={"query_wait_timeout": 2, "reserve_pool_size": 0})}
)


@pytest.fixture(scope="module")
def servers() -> Iterator[Servers]:
    with Servers(CONFIG) as started:
        yield started


def test_a_saturated_pool_leaves_the_migration_its_direct_slot_and_fails_the_next_client_in_seconds(
    servers: Servers,
) -> None:
    (pool,) = [p for p in pools(CONFIG) if p.app == "gateway_app"]
    assert pool.max_server_connections == CONFIG.apps["gateway_app"].connection_limit - 1 == 14
    busy = [
        psycopg.connect(servers.dsn("gateway_app", "gateway_app", pooled=True), prepare_threshold=None)
        for _ in range(pool.max_server_connections)
    ]
    try:
        for conn in busy:  # each holds a server connection: transaction pooling keeps it until COMMIT
            conn.execute("SELECT 1")
        with psycopg.connect(servers.dsn("gateway_app", "fleet_platform", pooled=False)) as direct:
            assert direct.execute("SELECT session_user").fetchone() == ("gateway_app",)  # then SET ROLE to the owner
        started = time.monotonic()
        with (
            pytest.raises(psycopg.OperationalError, match="query_wait_timeout"),
            psycopg.connect(servers.dsn("gateway_app", "gateway_app", pooled=True), prepare_threshold=None) as late,
        ):
            late.execute("SELECT 1")
        assert time.monotonic() - started < 10  # the stack's 2 s and PgBouncer's check interval, not 120 s
    finally:
        for conn in busy:
            conn.close()
