"""The real Pulumi CLI (scripts/engine.sh's build) on a file backend in a temp dir, a passphrase secrets
provider, no update check and no plugin downloads: how the end-to-end tests run it."""

from __future__ import annotations

import json
import os
import shutil
import subprocess
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import yaml

from postgres_platform.model.stackfile import ROOT

PASSPHRASE = "e2e-only-passphrase"


@dataclass(frozen=True)
class Engine:
    bin_dir: Path  # pulumi, the language host, the dynamic-provider plugin (scripts/engine.sh)
    home: Path  # HOME, PULUMI_HOME and the file backend's state, all under the test's temp dir
    venv: Path  # the program's virtualenv: this machine's packages (the project is installed)

    def env(self) -> dict[str, str]:
        return {
            **os.environ,
            "PATH": f"{self.bin_dir}:{self.venv / 'bin'}:{os.environ['PATH']}",
            "HOME": str(self.home),
            "PULUMI_HOME": str(self.home / ".pulumi"),
            "PULUMI_BACKEND_URL": f"file://{self.home / 'state'}",
            "PULUMI_CONFIG_PASSPHRASE": PASSPHRASE,
            "PULUMI_SKIP_UPDATE_CHECK": "true",
            "PULUMI_DISABLE_AUTOMATIC_PLUGIN_ACQUISITION": "true",
        }

    def project(self, name: str, program: Path) -> Path:
        """A project dir: the program's __main__.py and the repo's Pulumi.yaml, its venv made absolute."""
        directory = self.home / name
        directory.mkdir()
        shutil.copy(program / "__main__.py", directory / "__main__.py")
        project = yaml.safe_load((ROOT / "Pulumi.yaml").read_text())
        project["runtime"]["options"]["virtualenv"] = str(self.venv)
        (directory / "Pulumi.yaml").write_text(yaml.safe_dump(project))
        return directory

    def policy_pack(self) -> Path:
        """The repo's policy pack, its venv made absolute."""
        directory = self.home / "policy"
        shutil.copytree(ROOT / "policy", directory, ignore=shutil.ignore_patterns("venv", "__pycache__"))
        pack = yaml.safe_load((directory / "PulumiPolicy.yaml").read_text())
        pack["runtime"]["options"]["virtualenv"] = str(self.venv)
        (directory / "PulumiPolicy.yaml").write_text(yaml.safe_dump(pack))
        return directory

    def run(self, cwd: Path, *args: str, check: bool = True, timeout: float = 600) -> subprocess.CompletedProcess[str]:
        done = subprocess.run(
            [str(self.bin_dir / "pulumi"), *args, "--non-interactive"],
            cwd=cwd,
            env=self.env(),
            capture_output=True,
            text=True,
            timeout=timeout,
        )
        if check and done.returncode != 0:
            raise AssertionError(f"pulumi {' '.join(args)} failed ({done.returncode}):\n{done.stdout}\n{done.stderr}")
        return done

    def new_stack(self, cwd: Path, stack: str, config: dict[str, Any], secrets: dict[str, str] | None = None) -> None:
        self.run(cwd, "stack", "init", stack, "--secrets-provider", "passphrase")
        (cwd / f"Pulumi.{stack}.yaml").write_text(yaml.safe_dump({"config": config}))
        for key, value in (secrets or {}).items():
            self.set_secret(cwd, key, value)

    def set_secret(self, cwd: Path, key: str, value: str) -> None:
        # Standard input, never an argument: `pulumi config set --secret KEY` reads it there.
        done = subprocess.run(
            [str(self.bin_dir / "pulumi"), "config", "set", "--secret", key, "--non-interactive"],
            cwd=cwd,
            env=self.env(),
            input=value,
            capture_output=True,
            text=True,
            timeout=120,
        )
        assert done.returncode == 0, done.stderr

    def state(self, cwd: Path) -> dict[str, Any]:
        exported: dict[str, Any] = json.loads(self.run(cwd, "stack", "export").stdout)
        return exported

    def resources(self, cwd: Path) -> list[dict[str, Any]]:
        resources: list[dict[str, Any]] = self.state(cwd)["deployment"].get("resources") or []
        return resources
