"""The generated alert rules of every stack, checked and unit-tested by promtool (Debian trixie's
prometheus package, in the postgres-platform/prometheus image), and the custom queries run on a real
PostgreSQL 17 server of the shipped image."""

from __future__ import annotations

import math
import re
import subprocess
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import psycopg
import pytest
import yaml

from postgres_platform.harness.docker import docker
from postgres_platform.harness.servers import Servers
from postgres_platform.model import budget
from postgres_platform.model.config import PlatformConfig
from postgres_platform.model.images import PROMETHEUS_253
from postgres_platform.model.load import load_stack_values
from postgres_platform.model.names import MONITORING_ROLE
from postgres_platform.model.stackfile import ROOT, read_stack_values, stack_file
from postgres_platform.render import monitoring

STACKS = sorted(p.name.removeprefix("Pulumi.").removesuffix(".yaml") for p in ROOT.glob("Pulumi.*.yaml"))
EVAL = 15  # minutes: past every rule's `for`
ROGUE = "rogue_app"


def config_of(stack: str) -> PlatformConfig:
    return load_stack_values(read_stack_values(stack_file(stack)))


def promtool(directory: Path, *args: str) -> subprocess.CompletedProcess[str]:
    directory.chmod(0o755)
    for path in directory.iterdir():
        path.chmod(0o644)
    mount = f"{directory}:/rules:ro"
    return docker(
        "run", "--rm", "--network", "none", "-v", mount, "-w", "/rules", PROMETHEUS_253.reference, *args, check=False
    )


def go_value(value: float) -> str:
    """$value as Prometheus' templates print a float (six significant digits, as %g)."""
    return f"{value:g}"


def expected(rule: dict[str, Any], labels: dict[str, str], value: float) -> dict[str, Any]:
    """The alert promtool should see: the rule's labels and summary with $labels and $value filled in."""

    def fill(text: str) -> str:
        text = text.replace("{{ $value }}", go_value(value))
        return re.sub(r"\{\{ \$labels\.(\w+) \}\}", lambda m: labels.get(m.group(1), ""), text)

    rule_labels = {k: fill(v) for k, v in rule["labels"].items()}
    return {
        "exp_labels": {**labels, **rule_labels},
        "exp_annotations": {"summary": fill(rule["annotations"]["summary"])},
    }


class Case:
    """Input series and the alerts they must fire (every other alert of the file must stay quiet)."""

    def __init__(self, rules: dict[str, Any]) -> None:
        self.by_name: dict[str, list[dict[str, Any]]] = {}
        for group in rules["groups"]:
            for rule in group["rules"]:
                self.by_name.setdefault(rule["alert"], []).append(rule)
        self.series: list[dict[str, str]] = []
        self.firing: dict[str, list[dict[str, Any]]] = {name: [] for name in self.by_name}

    def add(self, metric: str, labels: dict[str, str], values: str) -> None:
        shown = ",".join(f'{k}="{v}"' for k, v in labels.items())
        self.series.append({"series": f"{metric}{{{shown}}}", "values": values})

    def fires(self, name: str, labels: dict[str, str], value: float, match: dict[str, str] | None = None) -> None:
        """`name` fires with these series labels; `match`: which of its rules (by their labels)."""
        chosen = [r for r in self.by_name[name] if all(r["labels"].get(k) == v for k, v in (match or {}).items())]
        assert len(chosen) == 1, (name, match)
        self.firing[name].append(expected(chosen[0], labels, value))

    def test(self) -> dict[str, Any]:
        return {
            "interval": "1m",
            "input_series": self.series,
            "alert_rule_test": [
                {"eval_time": f"{EVAL}m", "alertname": name, "exp_alerts": alerts}
                for name, alerts in self.firing.items()
            ],
        }


def steady(value: float) -> str:
    return f"{value:g}x{EVAL + 5}"


def healthy(case: Case, config: PlatformConfig) -> None:
    """Series of a healthy stack: every exporter up, nothing waiting, recent backup, young xids."""
    for job in monitoring.jobs(config):
        case.add("up", {"job": job}, steady(1))
        case.add("pgbouncer_up" if job == "pgbouncer" else "pg_up", {"job": job}, steady(1))
    case.add("pgplatform_database_xid_age", {"job": "postgres-primary", "datname": "postgres"}, steady(1000))
    case.add("pgplatform_backup_last_time_seconds", {"job": "postgres-primary"}, steady(0))
    # A fresh full and a diff months old: the full counts as the diff that is due, so both stay quiet.
    for kind, stopped in (("full", 0), ("diff", -1e7)):
        case.add("pgplatform_backup_by_type_time_seconds", {"job": "postgres-primary", "type": kind}, steady(stopped))
    case.add("pgplatform_restore_verification_last_success_time_seconds", {"job": "postgres-primary"}, steady(0))
    case.add("pgplatform_restore_verification_latest_ok", {"job": "postgres-primary"}, steady(1))
    case.add("pg_stat_archiver_failed_count", {"job": "postgres-primary"}, steady(3))
    case.add("pg_replication_lag_seconds", {"job": "postgres-replica"}, steady(0))
    case.add("pg_replication_is_replica", {"job": "postgres-replica"}, steady(1))
    case.fires("Watchdog", {}, 1)


def storm_case(config: PlatformConfig, rules: dict[str, Any]) -> tuple[Case, str]:
    """The first app at 90% of its limit on the primary: its 75% and 90% alerts fire, labelled with it,
    and no other role's; an undeclared role holds a slot; a superuser session (postgres) is not undeclared."""
    case = Case(rules)
    healthy(case, config)
    primary = budget.compute(config)[0]
    apps = [e for e in primary.entries if e.kind != "system"]
    stormed = apps[0]
    held = math.ceil(0.9 * stormed.limit)
    for server in budget.compute(config):
        job = monitoring.job(server.name)
        for entry in apps:
            count = held if (entry is stormed and server.name == "primary") else 0
            labels = {"job": job, "usename": entry.role}
            case.add("pgplatform_role_backends_count", labels, steady(count))
            case.add("pgplatform_role_backends_superuser", labels, steady(0))
            for level, name in ((0.75, "PostgresRoleConnections75"), (0.9, "PostgresRoleConnections90")):
                if count and count >= level * entry.limit:
                    case.fires(name, labels, count, {"role": entry.role, "server": server.name})
        extra = {ROGUE: (1, 0), "postgres": (2, 1)} if server.name == "primary" else {}
        for role, (count, superuser) in extra.items():
            labels = {"job": job, "usename": role}
            case.add("pgplatform_role_backends_count", labels, steady(count))
            case.add("pgplatform_role_backends_superuser", labels, steady(superuser))
        if extra:
            case.fires("PostgresUndeclaredRoleConnections", {"job": job, "usename": ROGUE}, 1, {"server": server.name})
        total = held + 3 if server.name == "primary" else 0
        for level, name in ((0.75, "PostgresServerConnections75"), (0.9, "PostgresServerConnections90")):
            if total >= level * server.usable:
                case.fires(name, {}, total, {"server": server.name})
    if config.pgbouncer is not None:
        pool = {"job": "pgbouncer", "database": stormed.database or "", "user": stormed.role}
        case.add("pgbouncer_pools_client_waiting_connections", pool, steady(0))
        case.add("pgbouncer_pools_client_maxwait_seconds", pool, steady(0))
    return case, stormed.role


def trouble_case(config: PlatformConfig, rules: dict[str, Any]) -> Case:
    """Everything else broken at once: each alert fires on its series."""
    case = Case(rules)
    case.fires("Watchdog", {}, 1)
    jobs = monitoring.jobs(config)
    for job in jobs[1:]:  # the first job has no target at all: absent
        case.add("up", {"job": job}, steady(0))
        case.fires("ExporterDown", {"job": job}, 0, {"job": job})
        up = "pgbouncer_up" if job == "pgbouncer" else "pg_up"
        case.add(up, {"job": job}, steady(0))
        case.fires("ServerDown", {"job": job}, 0, {"job": job})
    case.fires("ExporterAbsent", {"job": jobs[0]}, 1, {"job": jobs[0]})
    age = 0.8 * monitoring.WRAPAROUND
    db = {"job": "postgres-primary", "datname": "app_db"}
    case.add("pgplatform_database_xid_age", db, steady(age))
    case.fires("PostgresXidAge50", db, age)
    case.fires("PostgresXidAge75", db, age)
    if "PostgresBackupTooOld" in case.by_name:
        limit = float(re.findall(r"> (\d+)", case.by_name["PostgresBackupTooOld"][0]["expr"])[0])
        case.add("pgplatform_backup_last_time_seconds", {"job": "postgres-primary"}, steady(-limit))
        case.fires("PostgresBackupTooOld", {"job": "postgres-primary"}, EVAL * 60 + limit)
        # Per type: the full one too old for its schedule; the diff fresh enough by itself, but not the full's
        # age that would count for it. Each rule's limit from its own expression (a budget of hours per type).
        full_limit, diff_limit = (
            float(re.findall(r"> (\d+)", case.by_name[name][0]["expr"])[0])
            for name in ("PostgresBackupFullTooOld", "PostgresBackupDiffTooOld")
        )
        assert full_limit > diff_limit  # prod's full schedule is weekly, its diffs daily
        full, diff = {"job": "postgres-primary", "type": "full"}, {"job": "postgres-primary", "type": "diff"}
        case.add("pgplatform_backup_by_type_time_seconds", full, steady(-full_limit))
        case.add("pgplatform_backup_by_type_time_seconds", diff, steady(-diff_limit))
        case.fires("PostgresBackupFullTooOld", full, EVAL * 60 + full_limit)
        case.fires("PostgresBackupDiffTooOld", {"job": "postgres-primary"}, EVAL * 60 + diff_limit)
        case.add("pg_stat_archiver_failed_count", {"job": "postgres-primary"}, f"0+2x{EVAL + 5}")
        case.fires("PostgresWalArchivingFailing", {"job": "postgres-primary"}, 2 / 60)
    if "PostgresRestoreNotVerified" in case.by_name:
        limit = float(re.findall(r"> (\d+)", case.by_name["PostgresRestoreNotVerified"][0]["expr"])[0])
        primary = {"job": "postgres-primary"}
        case.add("pgplatform_restore_verification_last_success_time_seconds", primary, steady(-limit))
        case.fires("PostgresRestoreNotVerified", primary, EVAL * 60 + limit)
        case.add("pgplatform_restore_verification_latest_ok", primary, steady(0))
        case.fires("PostgresRestoreVerificationFailed", primary, 0)
    if "PostgresReplicaDown" in case.by_name:
        replica = {"job": "postgres-replica"}
        case.add("pg_replication_lag_seconds", replica, steady(120))
        case.fires("PostgresReplicationLag", replica, 120)
        case.fires("PostgresReplicaDown", replica, 0)
    if "PgBouncerMaxWait" in case.by_name:
        pool = {"job": "pgbouncer", "database": "app_db", "user": "some_app"}
        case.add("pgbouncer_pools_client_waiting_connections", pool, steady(3))
        case.add("pgbouncer_pools_client_maxwait_seconds", pool, steady(10))
        case.fires("PgBouncerClientsWaiting", pool, 3)
        case.fires("PgBouncerMaxWait", pool, 10)
    if "PostgresSuperuserOutsideAdmin" in case.by_name:
        session = {"job": "postgres-primary", "usename": "postgres", "client_addr": "198.51.100.7"}
        case.add("pgplatform_superuser_outside_count", session, steady(1))
        case.fires("PostgresSuperuserOutsideAdmin", session, 1)
    return case


@pytest.mark.parametrize("stack", STACKS)
def test_promtool_checks_and_unit_tests_the_rules_of_every_stack(stack: str, tmp_path: Path) -> None:
    config = config_of(stack)
    (tmp_path / "rules.yml").write_text(monitoring.rules_yaml(config, stack))
    checked = promtool(tmp_path, "check", "rules", "rules.yml")
    assert checked.returncode == 0, checked.stdout + checked.stderr
    assert "SUCCESS" in checked.stdout + checked.stderr
    rules = monitoring.rules(config, stack)
    storm, role = storm_case(config, rules)
    assert storm.firing["PostgresRoleConnections90"] and all(
        a["exp_labels"]["role"] == role for a in storm.firing["PostgresRoleConnections90"]
    )
    tests = {
        "rule_files": ["rules.yml"],
        "evaluation_interval": "1m",
        "tests": [storm.test(), trouble_case(config, rules).test()],
    }
    (tmp_path / "tests.yml").write_text(yaml.safe_dump(tests, sort_keys=False, width=1000))
    tested = promtool(tmp_path, "test", "rules", "tests.yml")
    assert tested.returncode == 0, tested.stdout + tested.stderr


def test_promtool_fails_a_test_that_expects_another_apps_alert(tmp_path: Path) -> None:
    """The unit tests above can fail: the 90% alert of an app that is not stormed is refused."""
    config = config_of("prod")
    rules = monitoring.rules(config, "prod")
    storm, role = storm_case(config, rules)
    other = next(e for e in budget.compute(config)[0].entries if e.kind == "app" and e.role != role)
    storm.fires(
        "PostgresRoleConnections90",
        {"job": "postgres-primary", "usename": other.role},
        other.limit,
        {"role": other.role, "server": "primary"},
    )
    (tmp_path / "rules.yml").write_text(monitoring.rules_yaml(config, "prod"))
    tests = {"rule_files": ["rules.yml"], "evaluation_interval": "1m", "tests": [storm.test()]}
    (tmp_path / "tests.yml").write_text(yaml.safe_dump(tests, sort_keys=False, width=1000))
    tested = promtool(tmp_path, "test", "rules", "tests.yml")
    assert tested.returncode != 0 and other.role in tested.stdout + tested.stderr


# The local stack without its backups (not what this is about), as test_live_budget starts it.
LOCAL = load_stack_values(read_stack_values(stack_file("local"))).model_copy(update={"backup": None})


@pytest.fixture(scope="module")
def servers() -> Iterator[Servers]:
    with Servers(LOCAL) as started:
        yield started


def test_every_custom_query_runs_as_a_pg_monitor_member_and_returns_its_declared_columns(servers: Servers) -> None:
    # Every query a stack can render: prod has admin CIDRs (203.0.113.10/32) and backups.
    queries = monitoring.queries(config_of("prod"))
    assert {"pgplatform_superuser_outside", "pgplatform_backup_last", "pgplatform_restore_verification"} <= set(queries)
    role = MONITORING_ROLE  # created by the access plan: a pg_monitor member with the budget's limit
    held = psycopg.connect(servers.superuser_dsn())  # over TCP from this machine: outside the admin CIDRs
    worker = psycopg.connect(servers.dsn("worker_app", LOCAL.apps["worker_app"].database, pooled=False))
    try:
        with psycopg.connect(servers.dsn(role, "postgres", pooled=False)) as conn:
            results = {}
            for name, spec in queries.items():
                cursor = conn.execute(spec["query"])
                declared = [column for metric in spec["metrics"] for column in metric]
                assert [d.name for d in cursor.description or []] == declared, name
                results[name] = cursor.fetchall()
    finally:
        held.close()
        worker.close()
    roles = {row[0]: row for row in results["pgplatform_role_backends"]}
    assert roles[role][1:] == (1, 2, 0)  # its own session, its CONNECTION LIMIT from the budget
    assert roles["postgres"][1] >= 1 and roles["postgres"][3] == 1
    assert roles["worker_app"][1:] == (1, 5, 0)  # one session, its CONNECTION LIMIT from the budget
    assert {"postgres", "fleet_platform"} <= {row[0] for row in results["pgplatform_database"]}
    assert all(isinstance(row[1], int) and row[1] > 0 for row in results["pgplatform_database"])
    outside = results["pgplatform_superuser_outside"]
    assert [row[0] for row in outside] == ["postgres"] and outside[0][2] >= 1 and outside[0][1]
    assert results["pgplatform_backup_last"] == [(0.0,)]  # no backup taken on this server
    assert results["pgplatform_restore_verification"] == [(0.0, 0.0, -1)]  # no verification yet: no table either
