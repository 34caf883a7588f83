"""What the shipped PgBouncer (Debian 13's 1.24.1-1+deb13u2, the image the stacks run) brings that users
want, on the prod config: prepared statements through transaction pooling, per-user client caps, and
`[users]` entries that auth_query honours (pgbouncer#484, fixed in 1.23.0)."""

from __future__ import annotations

from collections.abc import Iterator

import psycopg
import pytest

from postgres_platform.harness.servers import Servers
from postgres_platform.model.images import PGBOUNCER_124
from postgres_platform.model.load import load_stack_values
from postgres_platform.model.stackfile import read_stack_values, stack_file

PROD = load_stack_values(read_stack_values(stack_file("prod")))


@pytest.fixture(scope="module")
def servers() -> Iterator[Servers]:
    with Servers(PROD) as started:
        yield started


def test_the_servers_run_the_versions_the_images_carry(servers: Servers) -> None:
    assert PROD.required_pgbouncer().image == PGBOUNCER_124.reference
    assert servers.versions() == {
        "postgres": "17.12",
        "pgbouncer": "1.24.1",
        "pgbackrest": "2.55.1",
        "patroni": "4.0.7",
    }


def test_prepared_statements_survive_transaction_pooling(servers: Servers) -> None:
    """prepare_threshold=0: psycopg prepares every statement (as pgJDBC and asyncpg do), protocol level.
    Twelve clients, more than webhook_app's pool, so transactions move between server connections."""
    clients = [
        psycopg.connect(servers.dsn("webhook_app", "webhook_app", pooled=True), autocommit=True, prepare_threshold=0)
        for _ in range(12)
    ]
    try:
        for i in range(20):
            for n, conn in enumerate(clients):
                row = conn.execute("SELECT %s::int + %s::int, current_user", (i, n)).fetchone()
                assert row == (i + n, "webhook_app")
    finally:
        for conn in clients:
            conn.close()
    with psycopg.connect(servers.console_dsn(), autocommit=True, prepare_threshold=None) as console:
        pools = {row[0]: row for row in console.execute("SHOW POOLS").fetchall()}
    assert "webhook_app" in pools  # the statements ran pooled, not on a direct connection


def test_a_user_listed_under_users_logs_in_with_auth_query_and_its_client_cap_holds(servers: Servers) -> None:
    """Before 1.23 such a user failed SASL authentication (pgbouncer#484); 1.24 caps its clients."""
    ini = servers.root / "pgbouncer" / "pgbouncer.ini"
    original = ini.read_text()
    ini.write_text(original.replace("[users]\n", "[users]\ningest_app = max_user_client_connections=2\n"))
    with psycopg.connect(servers.console_dsn(), autocommit=True, prepare_threshold=None) as console:
        console.execute("RELOAD")
    try:
        dsn = servers.dsn("ingest_app", "ingest_app", pooled=True)
        first, second = (psycopg.connect(dsn, prepare_threshold=None) for _ in range(2))
        try:
            assert first.execute("SELECT current_user").fetchone() == ("ingest_app",)
            with pytest.raises(psycopg.OperationalError, match="client connections exceeded"):
                psycopg.connect(dsn, prepare_threshold=None).close()
        finally:
            first.close()
            second.close()
    finally:
        ini.write_text(original)
        with psycopg.connect(servers.console_dsn(), autocommit=True, prepare_threshold=None) as console:
            console.execute("RELOAD")
