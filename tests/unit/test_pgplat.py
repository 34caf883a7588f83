"""`pgplat`: each subcommand is the command it names, with the user's arguments unchanged."""

from __future__ import annotations

import json
import subprocess
import sys
from importlib.metadata import version
from typing import Any

import pytest

from postgres_platform.cli import pgplat
from postgres_platform.model.images import BUILDS


@pytest.fixture
def calls(monkeypatch: pytest.MonkeyPatch) -> list[tuple[str, list[str]]]:
    """Each delegated call (module, argv), answered with exit 3 so that the exit code is seen to pass through."""
    seen: list[tuple[str, list[str]]] = []

    def record(module: str, argv: list[str]) -> int:
        seen.append((module, argv))
        return 3

    monkeypatch.setattr(pgplat, "delegate", record)
    return seen


@pytest.mark.parametrize(
    ("argv", "expected"),
    [
        (["check", "prod", "--json"], ("preflight", ["prod", "--json"])),
        (["diff", "prod", "--against", "old.yaml"], ("preflight", ["prod", "--against", "old.yaml"])),
        (["grants", "prod", "--dsn-file", "a.dsn"], ("live_budget", ["--check-grants", "prod", "--dsn-file", "a.dsn"])),
        (["live", "prod", "--watch", "5"], ("live_budget", ["prod", "--watch", "5"])),
        (["bench", "grants", "--json"], ("bench_grants", ["--json"])),
        (["sql", "--help"], ("render_sql", ["--help"])),
    ],
)
def test_a_subcommand_hands_its_arguments_on(
    calls: list[tuple[str, list[str]]], argv: list[str], expected: tuple[str, list[str]]
) -> None:
    assert pgplat.main(argv) == 3
    assert calls == [expected]


def test_every_subcommand_names_a_command_that_exists() -> None:
    import importlib

    for module, _, _ in pgplat.DELEGATES.values():
        assert callable(importlib.import_module(f"postgres_platform.cli.{module}").main), module
    for module in pgplat.BENCHES.values():
        assert callable(importlib.import_module(f"postgres_platform.cli.{module}").main), module


def test_version_and_help(capsys: pytest.CaptureFixture[str]) -> None:
    assert pgplat.main(["--version"]) == 0
    assert capsys.readouterr().out.strip() == f"pgplat {version('postgres-platform')}"
    assert pgplat.main(["--help"]) == 0
    shown = capsys.readouterr().out
    assert all(name in shown for name in [*pgplat.DELEGATES, "bench", "versions"])
    assert "pgplat check prod" in shown  # the examples


def test_an_unknown_subcommand_could_not_run(capsys: pytest.CaptureFixture[str]) -> None:
    assert pgplat.main(["chek", "prod"]) == 2
    assert "No such command 'chek'" in capsys.readouterr().err


def test_versions_are_the_images_table(capsys: pytest.CaptureFixture[str]) -> None:
    assert pgplat.main(["versions", "--json"]) == 0
    rows: list[dict[str, Any]] = json.loads(capsys.readouterr().out)
    assert {(r["image"], r["component"], r["version"]) for r in rows} == {
        (ref, component, carried) for ref, build in BUILDS.items() for component, carried in build.versions.items()
    }


def test_the_console_script_completes_subcommands() -> None:
    done = subprocess.run(
        [sys.executable, "-c", "from postgres_platform.cli.pgplat import main; main()"],
        env={"_PGPLAT_COMPLETE": "bash_complete", "COMP_WORDS": "pgplat ch", "COMP_CWORD": "1", "PATH": "/usr/bin"},
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert "plain,check" in done.stdout.split(), (done.stdout, done.stderr)
