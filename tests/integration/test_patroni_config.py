"""CONFIG_PATCH (what the Hetzner stacks' dynamic-config command runs) against the drill's real Patroni
cluster: a reloadable setting lands on both members by a reload (same postmaster, same container), a
setting the stack drops goes back to its default, and the REST API refuses it without the password."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path
from typing import Any

import psycopg

from postgres_platform.cli import failover_drill
from postgres_platform.cli.failover_drill import FAILOVER, PARAMETERS, Drill, _wait
from postgres_platform.harness.docker import docker
from postgres_platform.model.names import POSTGRES_CONFIG_DIR
from postgres_platform.render.patroni import (
    CONFIG_PATCH,
    config_patch_input,
    durability,
    dynamic_config,
)
from tests.helpers import config_files
from tests.integration.test_failover_drill import validate_config
from tests.program.test_failover_plan import failover_run

CA_BUNDLE = "/etc/ssl/certs/ca-certificates.crt"  # any CA file: the drill's REST API is plain http on loopback


def desired(parameters: dict[str, str]) -> dict[str, Any]:
    return dynamic_config(parameters=parameters, **durability(FAILOVER))


def patch(d: Drill, parameters: dict[str, str], password: str) -> subprocess.CompletedProcess[str]:
    url = d.members["pg0"].rest
    body = json.dumps(desired(parameters))
    return subprocess.run(
        [sys.executable, "-c", CONFIG_PATCH, url, CA_BUNDLE, body],
        input=config_patch_input(password),
        capture_output=True,
        text=True,
        timeout=120,
        check=False,
    )


def show(d: Drill, member: str, setting: str) -> tuple[str, Any]:
    with psycopg.connect(d.superuser_dsn(d.members[member].pg_port, "postgres")) as conn:
        row = conn.execute(f"SELECT current_setting('{setting}'), pg_postmaster_start_time()").fetchone()
    assert row is not None
    return str(row[0]), row[1]


def started_at(container: str) -> str:
    return docker("inspect", "-f", "{{.State.StartedAt}}", container).stdout.strip()


def test_a_reloadable_setting_is_patched_and_reloaded_on_both_members_and_dropped_again() -> None:
    with failover_drill.started() as d:
        failover_drill.start_cluster(d)
        members = ("pg0", "pg1")
        before = {m: show(d, m, "work_mem") for m in members}
        assert all(value == "4MB" for value, _ in before.values())
        containers = {m: started_at(d.members[m].container) for m in members}

        done = patch(d, {**PARAMETERS, "work_mem": "16MB"}, d.passwords["rest"])
        assert done.returncode == 0, done.stderr
        for m in members:
            _wait(f"work_mem 16MB on {m}", 60, lambda m=m: show(d, m, "work_mem")[0] == "16MB")  # type: ignore[misc]
            assert show(d, m, "work_mem")[1] == before[m][1]  # the same postmaster: a reload, no restart
            assert started_at(d.members[m].container) == containers[m]

        # Dropped from the stack: nulled in Patroni's configuration, back to the server's default.
        done = patch(d, PARAMETERS, d.passwords["rest"])
        assert done.returncode == 0, done.stderr
        for m in members:
            _wait(f"work_mem back to 4MB on {m}", 60, lambda m=m: show(d, m, "work_mem")[0] == "4MB")  # type: ignore[misc]

        wrong = patch(d, {**PARAMETERS, "work_mem": "32MB"}, "not-the-password")
        assert wrong.returncode == 1
        (line,) = wrong.stderr.strip().splitlines()  # one line, no traceback
        assert line.startswith("PATCH /config failed: HTTP Error 401")
        assert show(d, "pg0", "work_mem")[0] == "4MB"


def test_patroni_validates_the_hetzner_members_files_through_the_members_own_command(tmp_path: Path) -> None:
    """The primary member's config directory exactly as the mocked prod plan writes it (patroni.yml, the 0600
    secrets.yml, TLS files), mounted where the member mounts it and run with the member's command: real
    Patroni 4 accepts every key, and finds the REST password in secrets.yml; only the etcd hosts,
    unreachable from here, are reported."""
    run = failover_run()
    for name, file in config_files(run, "primary-patroni-config").items():
        (tmp_path / name).write_text(file.content)
        (tmp_path / name).chmod(int(file.mode, 8))
    (member,) = [r for r in run.resources if r.name == "primary-patroni-container"]
    command = member.inputs["command"]
    assert command == ["patroni", POSTGRES_CONFIG_DIR]
    complaints = validate_config(member.inputs["image"], tmp_path, command[-1])
    assert complaints and all(line.startswith("etcd3.hosts.") and "is not reachable" in line for line in complaints), (
        complaints
    )
