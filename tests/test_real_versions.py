"""Behaviours of PgBouncer that depend on its version, each test gated on the versions it is about.

The stacks pin PgBouncer 1.25.2 (the CVE fixes); this machine's Debian package is older (1.18). What
the program relies on works on both; these tests pin down why it is built the way it is.
"""

from __future__ import annotations

from collections.abc import Iterator

import psycopg
import pytest

from postgres_platform.local_servers import Servers, pgbouncer_version
from postgres_platform.model.load import load_stack_values
from postgres_platform.stackfile import read_stack_values, stack_file
from tests.helpers import skip_without_real_servers

pytestmark = pytest.mark.real_server

skip_without_real_servers()

PROD = load_stack_values(read_stack_values(stack_file("prod")))
VERSION = pgbouncer_version()


@pytest.fixture(scope="module")
def servers() -> Iterator[Servers]:
    started = Servers(PROD).start()
    try:
        yield started
    finally:
        started.stop()


@pytest.mark.skipif(VERSION >= (1, 23, 0), reason=f"pgbouncer#484 was fixed in 1.23.0; this machine has {VERSION}")
def test_before_1_23_a_user_listed_under_users_cannot_log_in_with_auth_query(servers: Servers) -> None:
    """Why each app gets a pool database of its own instead of `[users] app = max_user_connections=N`."""
    with psycopg.connect(servers.dsn("ingest_app", "ingest_app", pooled=True), prepare_threshold=None) as conn:
        assert conn.execute("SELECT current_user").fetchone() == ("ingest_app",)  # as rendered: auth_query works
    ini = servers.root / "pgbouncer.ini"
    ini.write_text(ini.read_text().replace("[users]\n", "[users]\nwebhook_app = max_user_connections=5\n"))
    with psycopg.connect(servers.console_dsn(), autocommit=True, prepare_threshold=None) as console:
        console.execute("RELOAD")
    with pytest.raises(psycopg.OperationalError, match="SASL authentication failed"):
        psycopg.connect(servers.dsn("webhook_app", "webhook_app", pooled=True), prepare_threshold=None).close()
