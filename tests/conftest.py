"""Fixtures only; helpers shared by import are in tests/helpers.py."""

from __future__ import annotations

from collections.abc import Iterator

import pytest

from postgres_platform.local_servers import Servers
from postgres_platform.model.load import load_stack_values
from postgres_platform.offline.program import ProgramRun
from postgres_platform.stackfile import read_stack_values, stack_file
from tests.helpers import STACKS, run_of


@pytest.fixture(params=STACKS)
def stack_run(request: pytest.FixtureRequest) -> ProgramRun:
    """The real __main__ under mocks for each Pulumi.<stack>.yaml, run once per test session."""
    return run_of(request.param)


@pytest.fixture(scope="module")
def prod_tls_servers() -> Iterator[Servers]:
    """Real PostgreSQL and PgBouncer with the prod config, TLS and pg_hba as on a Hetzner host (one per module)."""
    started = Servers(load_stack_values(read_stack_values(stack_file("prod"))), tls=True).start()
    try:
        yield started
    finally:
        started.stop()
