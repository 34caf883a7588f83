"""The bundled Prometheus' and Alertmanager's generated configs, checked by the shipped binaries: promtool
(Prometheus 2.53) and amtool (Alertmanager 0.28) refuse unknown keys, so `url_file` and
`auth_password_file` are keys 0.28 knows, and the paths are where the containers mount them."""

from __future__ import annotations

import subprocess
from pathlib import Path
from typing import Any

import pytest
import yaml

from postgres_platform.harness.docker import docker
from postgres_platform.model.config import AlertmanagerConfig
from postgres_platform.model.images import ALERTMANAGER_028, PROMETHEUS_253
from postgres_platform.model.load import load_stack_values
from postgres_platform.model.stackfile import read_stack_values, stack_file
from postgres_platform.render import monitoring
from postgres_platform.render import monitoring_containers as mc


def _mounted(tmp_path: Path, label: str, files: dict[str, str]) -> str:
    directory = tmp_path / label
    directory.mkdir(mode=0o755)
    tmp_path.chmod(0o755)
    for name, text in files.items():
        (directory / name).write_text(text)
        (directory / name).chmod(0o644)
    return f"{directory}:{mc.CONFIG_DIRS[label]}:ro"


def amtool(tmp_path: Path, config: dict[str, Any]) -> subprocess.CompletedProcess[str]:
    mount = _mounted(tmp_path, mc.ALERTMANAGER, {mc.ALERTMANAGER_CONFIG: yaml.safe_dump(config)})
    path = f"{mc.CONFIG_DIRS[mc.ALERTMANAGER]}/{mc.ALERTMANAGER_CONFIG}"
    return docker(
        "run", "--rm", "--network", "none", "-v", mount, "--entrypoint", "amtool", ALERTMANAGER_028.reference,
        "check-config", path, check=False,
    )  # fmt: skip


EMAIL = {"smarthost": "smtp.example.org:587", "from": "a@example.org", "to": "b@example.org", "username": "u"}


@pytest.mark.parametrize(
    "receiver", [{"receiver": "webhook"}, {"receiver": "email", "email": EMAIL}], ids=["webhook", "email"]
)
def test_amtool_accepts_the_generated_alertmanager_config(tmp_path: Path, receiver: dict[str, Any]) -> None:
    config = mc.alertmanager_config(AlertmanagerConfig.model_validate(receiver))
    done = amtool(tmp_path, config)
    assert done.returncode == 0, done.stdout + done.stderr
    assert "SUCCESS" in done.stdout


def test_amtool_refuses_a_key_it_does_not_know(tmp_path: Path) -> None:
    """The control: a misspelt key fails, so the check above would catch a wrong one."""
    config = mc.alertmanager_config(AlertmanagerConfig(receiver="webhook"))
    hook = config["receivers"][0]["webhook_configs"][0]
    hook["url_fil"] = hook.pop("url_file")
    done = amtool(tmp_path, config)
    assert done.returncode != 0 and "url_fil" in done.stdout + done.stderr


@pytest.mark.parametrize("stack", ["local", "prod"])
def test_promtool_accepts_the_generated_prometheus_config_and_rules(tmp_path: Path, stack: str) -> None:
    config = load_stack_values(read_stack_values(stack_file(stack)))
    targets = {job: [f"10.0.1.10:{9187 if job != 'pgbouncer' else 9127}"] for job in monitoring.jobs(config)}
    prometheus = mc.prometheus_config(targets, ["10.0.1.10:9093"])
    files = {f.name: f.content for f in mc.prometheus_files(config, stack, prometheus)}
    mount = _mounted(tmp_path, mc.PROMETHEUS, files)
    path = f"{mc.CONFIG_DIRS[mc.PROMETHEUS]}/{mc.PROMETHEUS_CONFIG}"
    done = docker(
        "run", "--rm", "--network", "none", "-v", mount, PROMETHEUS_253.reference, "check", "config", path, check=False
    )
    assert done.returncode == 0, done.stdout + done.stderr
    assert "SUCCESS" in done.stdout and "rules found" in done.stdout
