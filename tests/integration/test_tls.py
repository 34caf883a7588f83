"""The Hetzner host's TLS and pg_hba.conf, on a real PostgreSQL and PgBouncer (loopback as the subnet)."""

from __future__ import annotations

from typing import Any

import psycopg
import pytest

from postgres_platform.harness.certificates import Certificates
from postgres_platform.harness.servers import Servers


@pytest.fixture(scope="module")
def servers(prod_tls_servers: Servers) -> Servers:
    return prod_tls_servers


def tls_of(conn: psycopg.Connection[Any]) -> tuple[Any, ...] | None:
    row: tuple[Any, ...] | None = conn.execute(
        "SELECT ssl, version FROM pg_stat_ssl WHERE pid = pg_backend_pid()"
    ).fetchone()
    return row


def test_apps_connect_with_verify_full_over_tls_1_2_or_newer(servers: Servers) -> None:
    with psycopg.connect(servers.dsn("webhook_app", "tracksolid_db", pooled=False)) as conn:
        ssl, version = tls_of(conn) or (None, None)
        assert ssl is True and version in ("TLSv1.2", "TLSv1.3")


def test_plaintext_is_rejected_by_the_last_lines(servers: Servers) -> None:
    with pytest.raises(psycopg.OperationalError, match=r"pg_hba\.conf rejects connection"):
        psycopg.connect(servers.dsn("webhook_app", "tracksolid_db", pooled=False, sslmode="disable")).close()


def test_an_app_only_reaches_its_own_database(servers: Servers) -> None:
    with pytest.raises(psycopg.OperationalError, match=r"pg_hba\.conf rejects connection"):
        psycopg.connect(servers.dsn("webhook_app", "fleet_platform", pooled=False)).close()


def test_tls_below_1_2_is_refused(servers: Servers) -> None:
    dsn = servers.dsn("webhook_app", "tracksolid_db", pooled=False) + " ssl_max_protocol_version=TLSv1.1"
    with pytest.raises(psycopg.OperationalError):
        psycopg.connect(dsn).close()


def test_a_certificate_from_another_ca_is_not_trusted(
    servers: Servers, tmp_path_factory: pytest.TempPathFactory
) -> None:
    other = Certificates(tmp_path_factory.mktemp("other-ca")).issue()  # a second, unrelated CA
    dsn = servers.dsn("webhook_app", "tracksolid_db", pooled=False).replace(str(servers.ca_file), str(other.ca_file))
    with pytest.raises(psycopg.OperationalError, match="certificate verify failed"):
        psycopg.connect(dsn).close()


def test_pgbouncer_requires_tls_from_clients_and_verifies_postgres(servers: Servers) -> None:
    with pytest.raises(psycopg.OperationalError):
        psycopg.connect(servers.dsn("worker_app", "worker_app", pooled=True, sslmode="disable")).close()
    with psycopg.connect(servers.dsn("worker_app", "worker_app", pooled=True), prepare_threshold=None) as conn:
        # The server connection PgBouncer opened as worker_app is TLS too.
        ssl, _ = tls_of(conn) or (None, None)
        assert ssl is True


def test_the_superuser_comes_from_the_admin_cidr_over_tls_only(servers: Servers) -> None:
    with psycopg.connect(servers.superuser_dsn()) as conn:
        assert (tls_of(conn) or (None,))[0] is True
    with pytest.raises(psycopg.OperationalError, match=r"pg_hba\.conf rejects connection"):
        psycopg.connect(servers.superuser_dsn() + " sslmode=disable").close()
