"""pgplat doctor: the engine's socket where DOCKER_HOST points, and a stack's secrets as preflight lists them."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
import yaml

from postgres_platform.cli import doctor
from postgres_platform.model.stackfile import stack_file


def test_docker_host_wins_over_the_default_sockets(tmp_path: Path) -> None:
    socket = tmp_path / "docker.sock"
    assert doctor.docker_socket({"DOCKER_HOST": f"unix://{socket}"}) == str(socket)
    assert not doctor.docker_check({"DOCKER_HOST": f"unix://{socket}"})["ok"]  # nothing listens there
    socket.touch()
    assert doctor.docker_check({"DOCKER_HOST": f"unix://{socket}"})["ok"]


def test_a_stack_secrets_missing_then_present(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    assert doctor.main(["legacy", "--json"]) == 1
    checks = {c["check"]: c for c in json.loads(capsys.readouterr().out)}
    missing = checks["secret postgres-platform:existingAdminPassword"]
    assert not missing["ok"] and "pulumi config set --secret postgres-platform:existingAdminPassword" in missing["fix"]

    document = yaml.safe_load(stack_file("legacy").read_text())
    document["config"]["postgres-platform:existingAdminPassword"] = {"secure": "AAABAMadeUpCipherText"}
    path = tmp_path / "Pulumi.legacy.yaml"
    path.write_text(yaml.safe_dump(document))
    doctor.main(["--stack-file", str(path), "--json"])
    checks = {c["check"]: c for c in json.loads(capsys.readouterr().out)}
    assert checks["secret postgres-platform:existingAdminPassword"]["ok"]


def test_a_missing_stack_file_could_not_run(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    assert doctor.main(["--stack-file", str(tmp_path / "Pulumi.x.yaml")]) == 2
    assert "Pulumi.x.yaml" in capsys.readouterr().err
