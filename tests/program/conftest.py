"""Program tier: the real __main__ and the policy pack under the SDK's mocks, and the scripts that run them."""

from __future__ import annotations

import pytest

from postgres_platform.offline.program import ProgramRun
from tests.helpers import STACKS, run_of, tier

pytest_collection_modifyitems = tier(__file__, "program")


@pytest.fixture(params=STACKS)
def stack_run(request: pytest.FixtureRequest) -> ProgramRun:
    """The real __main__ under mocks for each Pulumi.<stack>.yaml, run once per test session."""
    return run_of(request.param)
