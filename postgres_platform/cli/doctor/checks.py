"""What every job's checks share: a check, probing a tool, the versions scripts/engine.sh builds."""

from __future__ import annotations

import os
import re
import shutil
import subprocess
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Any

from postgres_platform.model.stackfile import ROOT

ENGINE_FIX = 'export PATH="$(bash scripts/engine.sh | tail -n1):$PATH" (engine.sh builds it with go, then caches it)'
PROJECT = "postgres-platform"
# The CLI's own calls: no update check over the network, no plugin downloads, never a prompt.
QUIET = {"PULUMI_SKIP_UPDATE_CHECK": "true", "PULUMI_DISABLE_AUTOMATIC_PLUGIN_ACQUISITION": "true"}


@dataclass(frozen=True)
class Check:
    job: str
    check: str
    ok: bool | None  # None: not checked (what it needs was not given)
    detail: str
    fix: str | None = None  # only where something is missing
    required: bool = True  # False: the job runs without it (an optional tool, an informational line)

    def as_dict(self) -> dict[str, Any]:
        return asdict(self) | {"fix": None if self.ok is not False else self.fix}


def lacks(checks: list[Check]) -> bool:
    return any(c.ok is False and c.required for c in checks)


def which(name: str, path: str) -> str | None:
    return shutil.which(name, path=path)


def run(argv: list[str], cwd: Path | None = None, timeout: float = 60) -> subprocess.CompletedProcess[str] | None:
    """A probe of a tool: None when it could not be started or did not answer in time."""
    try:
        return subprocess.run(
            argv,
            cwd=cwd,
            env={**os.environ, **QUIET},
            stdin=subprocess.DEVNULL,
            capture_output=True,
            text=True,
            timeout=timeout,
        )
    except (OSError, subprocess.TimeoutExpired):
        return None


def first_line(text: str) -> str:
    return next((line.strip() for line in text.splitlines() if line.strip()), "")


_VERSION = re.compile(r"v?(\d+)\.(\d+)\.(\d+)")


def parse_version(text: str) -> tuple[int, int, int] | None:
    """`v3.274.0` (what `pulumi version` prints), `3.272.0`, `v3.274.0-dev.0` -> (3, 274, 0)."""
    match = _VERSION.search(text)
    return (int(match[1]), int(match[2]), int(match[3])) if match else None


def shown(version: tuple[int, int, int]) -> str:
    return ".".join(map(str, version))


ENGINE_SCRIPT = ROOT / "scripts" / "engine.sh"


def script_assignments(script: Path = ENGINE_SCRIPT) -> dict[str, str]:
    """The top-level `NAME=value` lines of a shell script (`"$OTHER"` resolved): engine.sh's versions and recipe."""
    text = script.read_text() if script.is_file() else ""
    found: dict[str, str] = {}
    for name, value in re.findall(r'^([A-Z_]+)="?([^"\s#]*)"?', text, flags=re.MULTILINE):
        found[name] = found.get(value.removeprefix("$"), value) if value.startswith("$") else value
    return found


def engine_script_versions(script: Path = ENGINE_SCRIPT) -> dict[str, str]:
    """The `NAME=vX.Y.Z` versions scripts/engine.sh builds (CLI_VERSION, LANGHOST_VERSION)."""
    return {k: v for k, v in script_assignments(script).items() if k.endswith("_VERSION") and parse_version(v)}
