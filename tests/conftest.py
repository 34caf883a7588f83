"""Fixtures only; helpers shared by import are in tests/helpers.py."""

from __future__ import annotations

import pytest

from postgres_platform.offline.program import ProgramRun
from tests.helpers import STACKS, run_of


@pytest.fixture(params=STACKS)
def stack_run(request: pytest.FixtureRequest) -> ProgramRun:
    """The real __main__ under mocks for each Pulumi.<stack>.yaml, run once per test session."""
    return run_of(request.param)
