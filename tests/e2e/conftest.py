"""Fixtures of the end-to-end runs (scripts/e2e.sh sets PGPLAT_ENGINE_BIN after building the engine)."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import pytest

from tests.e2e.cli import Engine
from tests.helpers import tier

pytest_collection_modifyitems = tier(__file__, "e2e")


@pytest.fixture(scope="session")
def engine_bin() -> Path:
    value = os.environ.get("PGPLAT_ENGINE_BIN")
    if not value:
        pytest.skip("the end-to-end runs need the engine: run them with scripts/e2e.sh, which builds it")
    return Path(value)


@pytest.fixture(scope="session")
def venv(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A virtualenv over this interpreter's packages, as a user's `venv/` with requirements.txt installed."""
    path = tmp_path_factory.mktemp("venv")
    subprocess.run([sys.executable, "-m", "venv", "--system-site-packages", str(path)], check=True, timeout=300)
    return path


@pytest.fixture
def engine(engine_bin: Path, venv: Path, tmp_path: Path) -> Engine:
    (tmp_path / "state").mkdir()
    return Engine(engine_bin, tmp_path, venv)


def missing_plugins(engine_bin: Path) -> list[str]:
    """The provider plugins scripts/engine.sh could not build (its MISSING file), with its reasons."""
    missing = engine_bin / "MISSING"
    return missing.read_text().split() if missing.exists() else []
