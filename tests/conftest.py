"""Shared fixtures: a valid config to mutate, and one mocked program run per stack file."""

from __future__ import annotations

import copy
import sys
from pathlib import Path
from typing import Any

import pytest

ROOT = Path(__file__).resolve().parent.parent
if str(ROOT) not in sys.path:
    sys.path.insert(0, str(ROOT))

from scripts.offline import ProgramRun, run_stack  # noqa: E402
from scripts.realserver import missing_binaries  # noqa: E402

STACKS = sorted(p.name.removeprefix("Pulumi.").removesuffix(".yaml") for p in ROOT.glob("Pulumi.*.yaml"))

VALID: dict[str, Any] = {
    "target": "local",
    "postgres": {"image": "postgres:16.4-bookworm", "maxConnections": 100, "superuserReservedConnections": 3},
    "pgbouncer": {"image": "edoburu/pgbouncer:v1.23.1-p3", "defaultPoolSize": 10, "reservePoolSize": 2},
    "databases": {
        "tracksolid_db": {"schemas": ["tracksolid", "reporting"]},
        "fleet_platform": {"schemas": ["public"]},
    },
    "apps": {
        "webhook_app": {"database": "tracksolid_db", "access": "write", "connectionLimit": 10},
        "worker_app": {"database": "tracksolid_db", "access": "read", "connectionLimit": 5},
        "gateway_app": {"database": "fleet_platform", "access": "migrate", "connectionLimit": 15},
    },
    "externalRoles": {"grafana_ro": {"connectionLimit": 5}},
}


def valid_config() -> dict[str, Any]:
    return copy.deepcopy(VALID)


_runs: dict[str, ProgramRun] = {}


@pytest.fixture(params=STACKS)
def stack_run(request: pytest.FixtureRequest) -> ProgramRun:
    """The real __main__ under mocks for each Pulumi.<stack>.yaml, run once per test session."""
    stack: str = request.param
    if stack not in _runs:
        _runs[stack] = run_stack(stack)
    return _runs[stack]


def run_of(stack: str) -> ProgramRun:
    if stack not in _runs:
        _runs[stack] = run_stack(stack)
    return _runs[stack]


def skip_without_real_servers() -> None:
    """Real-server modules call this at import: skip them, saying what is missing, where it is."""
    missing = missing_binaries()
    if missing:
        pytest.skip(f"real-server tests need {', '.join(missing)} on this machine", allow_module_level=True)
