"""Integration tier: real PostgreSQL, PgBouncer and pgBackRest containers of the shipped images on loopback.

Skipped, with what is missing, on a machine without a Docker engine and the images (scripts/test.sh
provides both as root)."""

from __future__ import annotations

from collections.abc import Iterator

import pytest

from postgres_platform.harness.servers import Servers
from postgres_platform.model.load import load_stack_values
from postgres_platform.model.stackfile import read_stack_values, stack_file
from tests.helpers import missing_real_servers, tier

pytest_collection_modifyitems = tier(__file__, "integration", missing_real_servers)


@pytest.fixture(scope="module")
def prod_tls_servers() -> Iterator[Servers]:
    """Real PostgreSQL and PgBouncer with the prod config, TLS and pg_hba as on a Hetzner host (one per module)."""
    with Servers(load_stack_values(read_stack_values(stack_file("prod"))), tls=True) as started:
        yield started
