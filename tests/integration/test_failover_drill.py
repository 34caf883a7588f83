"""The failover drill, for real: 3 etcd members, 2 Patroni-managed PostgreSQL 17 members of the shipped
image (synchronous_mode on), HAProxy checking /primary, PgBouncer, writers; SIGKILL of the primary, a
rejoin through pg_rewind, a switchover with PgBouncer paused. About two minutes."""

from __future__ import annotations

import contextlib
import io
import json
import subprocess
from pathlib import Path
from typing import Any

import pytest

from postgres_platform.cli import failover_drill, live_budget, switchover
from postgres_platform.harness.docker import docker
from postgres_platform.model.images import POSTGRES_17
from postgres_platform.model.load import load_stack_values
from postgres_platform.model.names import POSTGRES_CONFIG_DIR
from postgres_platform.model.stackfile import read_stack_values, stack_file
from postgres_platform.render.patroni import patroni_secrets, patroni_yaml

CONFIG = load_stack_values(read_stack_values(stack_file("prod")))


def test_no_acknowledged_commit_is_lost_and_the_killed_primary_rejoins(
    capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch
) -> None:
    prefixes: list[str] = []  # this run's drill (another module's may run beside it)

    class Recorded(failover_drill.Drill):
        def __init__(self) -> None:
            super().__init__()
            prefixes.append(self.prefix)

    monkeypatch.setattr(failover_drill, "Drill", Recorded)
    code = failover_drill.main(["--json"])
    result: dict[str, Any] = json.loads(capsys.readouterr().out)
    assert set(result) == {"failover", "switchover", "rejoined"}
    failover, switchover = result["failover"], result["switchover"]
    assert failover["acknowledged"] > 0 and switchover["acknowledged"] > 0  # the writers wrote in both phases
    assert failover["acknowledgedLost"] == 0
    assert switchover["acknowledgedLost"] == 0
    assert result["rejoined"] is True
    assert 0 < failover["seconds"] < 60
    # Paused, the clients waited: none failed (PgBouncer held them while Patroni switched over).
    assert switchover["failedTransactions"] == 0
    assert code == 0
    # Everything the drill started is gone.
    (prefix,) = prefixes
    assert not [name for name in docker("ps", "-a", "--format", "{{.Names}}").stdout.split() if name.startswith(prefix)]


def test_the_script_runs_the_drill_module_and_says_what_it_needs() -> None:
    done = subprocess.run(
        ["python3", "scripts/failover_drill.py", "--help"], capture_output=True, text=True, timeout=60, check=False
    )
    assert done.returncode == 0
    assert "--json" in done.stdout and "SIGKILL" in done.stdout


def validate_config(image: str, directory: Path, path: str = POSTGRES_CONFIG_DIR) -> list[str]:
    """`patroni --validate-config path` in the image, `directory` mounted read-only as a member's config
    directory, no network: what Patroni complains of, a line each."""
    mount = f"type=bind,source={directory},target={POSTGRES_CONFIG_DIR},readonly"
    done = docker(
        "run", "--rm", "--network", "none", "--mount", mount, "--entrypoint", "patroni", image,
        "--validate-config", path, check=False,
    )  # fmt: skip
    return [line for line in (done.stdout + done.stderr).splitlines() if line.strip()]


def test_patroni_4_validates_a_hetzner_members_config_but_for_the_unreachable_etcd(tmp_path: Path) -> None:
    """Patroni's own --validate-config on the shape a Hetzner member gets (private addresses, pgBackRest
    replicas, watchdog automatic, REST auth), the passwords in secrets.yml beside it, the directory given
    as the member's command gives it: every key is accepted; the only complaints are the etcd members
    this sandbox cannot reach."""
    (tmp_path / "patroni.yml").write_text(
        patroni_yaml(
            scope="prod",
            name="db-0",
            connect_address="10.0.1.2:5432",
            rest_address="10.0.1.2:8008",
            etcd_hosts=["10.0.1.2:2379", "10.0.1.3:2379", "10.0.1.4:2379"],
            data_dir="/var/lib/postgresql/data",
            bin_dir="/usr/lib/postgresql/17/bin",
            parameters={"max_connections": "100", "shared_buffers": "256MB"},
            pg_hba=["local all all peer", "hostssl all all 10.0.1.0/24 scram-sha-256"],
            synchronous_mode=True,
            maximum_lag_on_failover=1048576,
            failsafe_mode=True,
            use_pg_rewind=True,
            pgbackrest_stanza="main",
            rest_username="patroni",
        )
    )
    (tmp_path / "secrets.yml").write_text(patroni_secrets(superuser="s", replication="r", rewind="w", restapi="a"))
    complaints = validate_config(POSTGRES_17.reference, tmp_path)
    assert complaints, "expected the unreachable etcd hosts to be reported"
    assert all(line.startswith("etcd3.hosts.") and "is not reachable" in line for line in complaints), complaints
    # patroni.yml alone lacks the REST API password: it is in secrets.yml only.
    bare = validate_config(POSTGRES_17.reference, tmp_path, f"{POSTGRES_CONFIG_DIR}/patroni.yml")
    assert any("restapi.authentication.password" in line for line in bare)


def test_live_shows_the_members_and_pgplat_switchover_switches(tmp_path: Path) -> None:
    """`live --patroni-url` reads the real Patroni's members; `scripts/switchover.py` (its command line, the
    secrets in files) moves the leader to the standby with PgBouncer paused; a stopped replica is a problem."""
    with failover_drill.started() as d:
        failover_drill.start_cluster(d)
        first, second = d.members["pg0"], d.members["pg1"]
        found, problems = live_budget.members_report(CONFIG, first.rest)
        assert {(m["name"], m["role"], m["state"]) for m in found} == {
            ("pg0", "leader", "running"),
            ("pg1", "sync_standby", "streaming"),
        }
        assert problems == [] and all(m["timeline"] == found[0]["timeline"] for m in found)

        (tmp_path / "auth").write_text(f"{failover_drill.REST_USER}:{d.passwords['rest']}\n")
        (tmp_path / "consoles").write_text(d.console_dsn() + "\n")
        (tmp_path / "endpoint").write_text(d.superuser_dsn(d.haproxy_port))
        argv = ["--patroni-url", first.rest, "--patroni-auth-file", str(tmp_path / "auth")]
        argv += ["--pgbouncer-dsn-file", str(tmp_path / "consoles"), "--endpoint-dsn-file", str(tmp_path / "endpoint")]
        out = io.StringIO()
        with contextlib.redirect_stdout(out):
            code = switchover.main([*argv, "--json"])
        done = json.loads(out.getvalue())
        assert code == 0 and (done["from"], done["to"]) == ("pg0", "pg1")
        assert d.routed_to(second)

        docker("stop", first.container)
        _, problems = live_budget.members_report(CONFIG, second.rest)
        assert [p["problem"] for p in problems] == ["replica pg0 is stopped: no failover to it"]
