"""The fast tests' job (preflight and the unit tests): this interpreter, the package, the test tools."""

from __future__ import annotations

import importlib.metadata as metadata
import importlib.util
import os
import sys

from postgres_platform.cli.doctor.checks import PROJECT, Check


def venv_check(job: str, required: bool) -> Check:
    inside = sys.prefix != sys.base_prefix or "VIRTUAL_ENV" in os.environ
    return Check(
        job,
        "venv",
        inside,
        f"{sys.prefix}" + ("" if inside else " (no venv active)"),
        "python3 -m venv venv && . venv/bin/activate && pip install -e . -r requirements-dev.txt",
        required,
    )


def package_check(job: str) -> Check:
    try:
        found = f"{PROJECT} {metadata.version(PROJECT)} in {sys.executable}"
    except metadata.PackageNotFoundError:
        return Check(job, "package", False, f"{PROJECT} is not installed for {sys.executable}", "pip install -e .")
    return Check(job, "package", True, found)


def module_check(job: str, module: str, why: str, required: bool, fix: str) -> Check:
    spec = importlib.util.find_spec(module)
    if spec is None:
        return Check(job, module, False, f"not importable ({why})", fix, required)
    try:
        shown = f"{module} {metadata.version(module)}"
    except metadata.PackageNotFoundError:
        shown = module
    return Check(job, module, True, f"{shown} ({why})", None, required)


def fast_test_checks() -> list[Check]:
    job, dev = "tests", "pip install -r requirements-dev.txt"
    return [
        venv_check(job, required=False),  # any interpreter with the package and pytest runs them
        package_check(job),
        module_check(job, "pytest", "runs the tests", True, dev),
        module_check(job, "ruff", "lint and format, optional", False, dev),
        module_check(job, "mypy", "type check, optional", False, dev),
    ]
