"""Test helpers shared by import (conftest.py holds only fixtures): stacks, a valid config, cached runs."""

from __future__ import annotations

import copy
import os
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest

from postgres_platform.harness.servers import missing_for_real_servers
from postgres_platform.model.images import PGBOUNCER_124, POSTGRES_17
from postgres_platform.model.stackfile import ROOT
from postgres_platform.offline.program import ProgramRun, run_stack
from postgres_platform.render.files import File, read_install_input

STACKS = sorted(p.name.removeprefix("Pulumi.").removesuffix(".yaml") for p in ROOT.glob("Pulumi.*.yaml"))
# Stacks whose server the program runs (and backs up); the others adopt a running server (target existing).
BUILT_STACKS = [s for s in STACKS if "target: existing" not in (ROOT / f"Pulumi.{s}.yaml").read_text()]

VALID: dict[str, Any] = {
    "target": "local",
    "postgres": {"image": POSTGRES_17.reference, "maxConnections": 100, "superuserReservedConnections": 3},
    "pgbouncer": {"image": PGBOUNCER_124.reference, "defaultPoolSize": 10, "reservePoolSize": 2},
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


def run_of(stack: str) -> ProgramRun:
    """The real __main__ under mocks for Pulumi.<stack>.yaml, run once per test session."""
    if stack not in _runs:
        _runs[stack] = run_stack(stack)
    return _runs[stack]


def skip_without_real_servers() -> None:
    """Skip the calling test, saying what is missing (for tests outside the integration tier)."""
    reason = missing_real_servers()
    if reason:
        pytest.skip(reason)


def tier(conftest: str, marker: str, skip_reason: Callable[[], str | None] = lambda: None) -> Any:
    """A tier's collection hook: every test under its directory gets the tier's marker, and the skip once.

    `tryfirst`, so `-m` (pytest's own hook, later) sees the marker. Every conftest's hook sees every item,
    hence the filter by directory."""
    here = Path(conftest).parent

    @pytest.hookimpl(tryfirst=True)
    def pytest_collection_modifyitems(items: list[pytest.Item]) -> None:
        mine = [item for item in items if item.path.is_relative_to(here)]
        reason = skip_reason() if mine else None
        for item in mine:
            item.add_marker(getattr(pytest.mark, marker))
            if reason:
                item.add_marker(pytest.mark.skip(reason=reason))

    return pytest_collection_modifyitems


def missing_real_servers() -> str | None:
    missing = missing_for_real_servers()
    return f"real-server tests need {', '.join(missing)} on this machine" if missing else None


def config_files(run: ProgramRun, component: str) -> dict[str, File[str]]:
    """The files a ConfigFiles component (e.g. `pgbouncer-config`) writes on its host, by name."""
    (write,) = [r for r in run.resources if r.name == f"{component}-write" and r.type.startswith("command:")]
    return read_install_input(write.inputs["stdin"])


def fake_commands(directory: Path, scripts: dict[str, str], **env: str) -> dict[str, str]:
    """Shell scripts standing in for commands (docker, etcdctl, ...) in `directory`: the environment that
    finds them first on PATH, with `env` added."""
    directory.mkdir(parents=True, exist_ok=True)
    for name, text in scripts.items():
        (directory / name).write_text(text)
        (directory / name).chmod(0o755)
    return {**os.environ, "PATH": f"{directory}:{os.environ['PATH']}", **env}
