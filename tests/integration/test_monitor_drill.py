"""The monitoring drill, for real: PostgreSQL and PgBouncer of the local stack, postgres_exporter and
pgbouncer_exporter logged in as the monitoring role, Prometheus evaluating the stack's generated rules,
Alertmanager posting to the drill's loopback webhook. About a minute."""

from __future__ import annotations

import json
import subprocess
from typing import Any

import pytest

from postgres_platform.cli import monitor_drill
from postgres_platform.harness.docker import docker


def firing(phase: dict[str, Any]) -> set[tuple[str, str | None]]:
    return {(f["alert"], f["role"]) for f in phase["firing"]}


def test_each_phase_fires_its_alert_and_no_other(capsys: pytest.CaptureFixture[str]) -> None:
    before = set(docker("ps", "-a", "--format", "{{.Names}}").stdout.split())
    code = monitor_drill.main(["--json"])
    result: dict[str, Any] = json.loads(capsys.readouterr().out)
    assert set(result) == {"phases", "role"}
    app = result["role"]
    assert app == "cron_app"  # the local stack's smallest CONNECTION LIMIT (5)
    phases = {p["phase"]: p for p in result["phases"]}
    assert list(phases) == ["idle", "storm", "archive", "down"]
    assert firing(phases["idle"]) == {("Watchdog", None)}
    # The stormed app's alerts at both levels, labelled with its role; no other app's, no server-wide one.
    assert firing(phases["storm"]) == {
        ("Watchdog", None),
        ("PostgresRoleConnections75", app),
        ("PostgresRoleConnections90", app),
    }
    assert firing(phases["archive"]) == {("Watchdog", None), ("PostgresWalArchivingFailing", None)}
    # The archive rule's rate window spans minutes: it may still fire beside the exporter's absence.
    assert (
        {("Watchdog", None), ("ExporterDown", None)}
        <= firing(phases["down"])
        <= {
            ("Watchdog", None),
            ("ExporterDown", None),
            ("PostgresWalArchivingFailing", None),
        }
    )
    assert all(0 < p["seconds"] < 2 * monitor_drill.PHASE_SECONDS for p in phases.values())
    assert code == 0
    after = set(docker("ps", "-a", "--format", "{{.Names}}").stdout.split())
    assert not {name for name in after - before if name.startswith("monitor-drill-")}  # all removed


def test_the_script_runs_the_drill_module() -> None:
    done = subprocess.run(
        ["python3", "scripts/monitor_drill.py", "--help"], capture_output=True, text=True, timeout=60, check=False
    )
    assert done.returncode == 0
    assert "--json" in done.stdout and "Alertmanager" in done.stdout
