"""The failover rules (hetzner.failover): promtool checks and unit-tests them, and every Patroni metric they
read is one the shipped image's Patroni serves on /metrics."""

from __future__ import annotations

import json
import re
from pathlib import Path
from typing import Any

import yaml

from postgres_platform.harness.docker import docker
from postgres_platform.model.config import PlatformConfig
from postgres_platform.model.images import POSTGRES_17
from postgres_platform.model.load import load_stack_values
from postgres_platform.model.stackfile import read_stack_values, stack_file
from postgres_platform.render import monitoring
from tests.integration.test_alert_rules import EVAL, Case, healthy, promtool, steady

PATRONI = {"job": monitoring.PATRONI_JOB}


def failover_config(**failover: Any) -> PlatformConfig:
    values = read_stack_values(stack_file("prod"))
    hetzner = json.loads(values["postgres-platform:hetzner"])
    values["postgres-platform:hetzner"] = json.dumps({**hetzner, "failover": {"enabled": True, **failover}})
    postgres = json.loads(values["postgres-platform:postgres"])
    values["postgres-platform:postgres"] = json.dumps({**postgres, "maxConnections": 120})  # room for Patroni
    return load_stack_values(values)


def member(name: str) -> dict[str, str]:
    return {**PATRONI, "instance": f"{name}:8008", "name": name, "scope": "prod"}


def cluster(case: Case, *, primary: str = "pg0", replica: str = "pg1", behind: int = 0, sync: int = 1) -> None:
    """A two-member cluster's series: the leader at LSN 10^9, the replica `behind` bytes back."""
    for name in (primary, replica):
        labels = member(name)
        is_primary = name == primary
        case.add("up", labels, steady(1))
        case.add("patroni_postgres_running", labels, steady(1))
        case.add("patroni_cluster_unlocked", labels, steady(0))
        case.add("patroni_is_paused", labels, steady(0))
        case.add("patroni_postgres_timeline", labels, steady(3))
        case.add("patroni_primary", labels, steady(int(is_primary)))
        case.add("patroni_replica", labels, steady(int(not is_primary)))
        case.add("patroni_sync_standby", labels, steady(0 if is_primary else sync))
        # LSNs in full (steady() keeps six digits): the lag is their difference
        case.add("patroni_xlog_location", labels, f"{10**9 if is_primary else 0}x{EVAL + 5}")
        case.add("patroni_xlog_replayed_location", labels, f"{0 if is_primary else 10**9 - behind}x{EVAL + 5}")


def run_tests(tmp_path: Path, config: PlatformConfig, *cases: Case) -> None:
    (tmp_path / "rules.yml").write_text(monitoring.rules_yaml(config, "prod"))
    checked = promtool(tmp_path, "check", "rules", "rules.yml")
    assert checked.returncode == 0, checked.stdout + checked.stderr
    tests = {"rule_files": ["rules.yml"], "evaluation_interval": "1m", "tests": [c.test() for c in cases]}
    (tmp_path / "tests.yml").write_text(yaml.safe_dump(tests, sort_keys=False, width=1000))
    tested = promtool(tmp_path, "test", "rules", "tests.yml")
    assert tested.returncode == 0, tested.stdout + tested.stderr


def test_a_healthy_cluster_is_quiet_and_each_failure_fires_its_alert(tmp_path: Path) -> None:
    config = failover_config()
    rules = monitoring.rules(config, "prod")
    quiet = Case(rules)
    healthy(quiet, config)
    cluster(quiet, behind=1000)

    lagging = Case(rules)
    healthy(lagging, config)
    lag = config.hetzner.failover.maximum_lag_on_failover + 1  # type: ignore[union-attr]
    cluster(lagging, behind=lag, sync=0)
    lagging.fires("PatroniReplicaTooFarBehind", member("pg1"), lag)
    (alert,) = lagging.firing["PatroniReplicaTooFarBehind"]
    summary = alert["exp_annotations"]["summary"]
    alert["exp_annotations"]["summary"] = summary.replace("{{ $value | humanize1024 }}", "1Mi")  # 1048577 bytes
    lagging.fires("PatroniNoSynchronousStandby", {}, 0)

    broken = Case(rules)
    healthy(broken, config)
    for name in ("pg0", "pg1"):  # both call themselves primary, nobody holds the lock, pg1's Postgres is down
        labels = member(name)
        for metric, value in (
            ("up", 1),
            ("patroni_primary", 1),
            ("patroni_replica", 0),
            ("patroni_sync_standby", 0),
            ("patroni_cluster_unlocked", 1),
            ("patroni_is_paused", 1),
            ("patroni_postgres_running", int(name == "pg0")),
        ):
            broken.add(metric, labels, steady(value))
        broken.add("patroni_postgres_timeline", labels, "3x10 4x10")  # promoted 10 minutes in
        broken.fires("PatroniFailoverHappened", labels, 1)
    broken.add("up", member("pg2"), steady(0))
    broken.fires("PatroniDown", member("pg2"), 0)
    broken.fires("PatroniNoLeader", {}, 1)
    broken.fires("PatroniTwoPrimaries", {}, 2)
    broken.fires("PatroniPostgresDown", member("pg1"), 0)
    # paused too, but for less than PatroniPaused's hour: that one stays quiet
    run_tests(tmp_path, config, quiet, lagging, broken)


def test_no_patroni_rules_without_failover_and_no_sync_rule_without_synchronous_mode() -> None:
    assert not monitoring.patroni_rules(load_stack_values(read_stack_values(stack_file("prod"))))
    names = {r["alert"] for r in monitoring.patroni_rules(failover_config(synchronousMode=False))}
    assert "PatroniNoLeader" in names and "PatroniNoSynchronousStandby" not in names
    bigger = monitoring.patroni_rules(failover_config(maximumLagOnFailover=5000))
    (lag,) = [r for r in bigger if r["alert"] == "PatroniReplicaTooFarBehind"]
    assert lag["expr"].endswith("> 5000")


def test_every_patroni_metric_the_rules_read_is_served_by_the_shipped_patroni() -> None:
    """The metric names come from the image's own Patroni (patroni/api.py's /metrics handler)."""
    source = docker(
        "run", "--rm", "--network", "none", "--entrypoint", "python3", POSTGRES_17.reference, "-c",
        "import inspect, patroni.api as a; print(inspect.getsource(a.RestApiHandler.do_GET_metrics))",
    ).stdout  # fmt: skip
    served = set(re.findall(r'"(patroni_\w+)\{0\}', source))
    assert {"patroni_primary", "patroni_xlog_location"} <= served, source[:500]
    rules = monitoring.patroni_rules(failover_config())
    read = {name for rule in rules for name in re.findall(r"\b(patroni_\w+)\{", rule["expr"])}
    assert read and read <= served, read - served
