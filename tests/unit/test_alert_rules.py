"""The alert rules follow the budget: an app's connectionLimit sets its thresholds, the stack's sections
decide which rules exist; the CLI prints the rules or the exporter's queries."""

from __future__ import annotations

import contextlib
import io
import re
from typing import Any

import yaml

from postgres_platform.cli import alert_rules
from postgres_platform.model import budget
from postgres_platform.model.load import parse
from postgres_platform.model.names import MONITORING_ROLE
from postgres_platform.render import monitoring
from tests.helpers import valid_config


def thresholds(raw: dict[str, Any], role: str) -> dict[str, float]:
    config = parse(raw)
    found = {}
    for group in monitoring.rules(config, "test")["groups"]:
        for rule in group["rules"]:
            if rule["labels"].get("role") == role and rule["alert"].startswith("PostgresRoleConnections"):
                found[rule["alert"]] = float(re.findall(r">= ([\d.]+)$", rule["expr"])[0])
    return found


def alerts(raw: dict[str, Any]) -> set[str]:
    rules = monitoring.rules(parse(raw), "test")
    return {rule["alert"] for group in rules["groups"] for rule in group["rules"]}


def test_an_apps_connection_limit_sets_its_thresholds_and_no_other_roles() -> None:
    raw = valid_config()
    app = next(iter(raw["apps"]))
    other = next(name for name in raw["apps"] if name != app)
    before, other_before = thresholds(raw, app), thresholds(raw, other)
    limit = raw["apps"][app]["connectionLimit"]
    assert before == {"PostgresRoleConnections75": 0.75 * limit, "PostgresRoleConnections90": 0.9 * limit}
    raw["apps"][app]["connectionLimit"] = limit - 2
    after = thresholds(raw, app)
    assert after == {"PostgresRoleConnections75": 0.75 * (limit - 2), "PostgresRoleConnections90": 0.9 * (limit - 2)}
    assert thresholds(raw, other) == other_before


def test_the_server_thresholds_follow_usable_slots() -> None:
    raw = valid_config()
    server = budget.compute(parse(raw))[0]
    rules = monitoring.server_rules(server, "test")
    assert [r["expr"].rsplit(" ", 1)[1] for r in rules] == [f"{0.75 * server.usable:g}", f"{0.9 * server.usable:g}"]


def test_sections_decide_which_rules_exist() -> None:
    raw = valid_config()
    found = alerts(raw)
    assert {"Watchdog", "ExporterAbsent", "PostgresXidAge50", "PostgresUndeclaredRoleConnections"} <= found
    assert ("PgBouncerClientsWaiting" in found) == ("pgbouncer" in raw)
    assert ("PostgresBackupTooOld" in found) == ("backup" in raw)


def test_a_schedules_longest_gap() -> None:
    assert monitoring.schedule_gap_hours("Sun *-*-* 01:00:00") == 7 * 24
    assert monitoring.schedule_gap_hours("Mon..Sat *-*-* 01:00:00") == 2 * 24
    assert monitoring.schedule_gap_hours("Mon,Thu *-*-* 02:00:00") == 4 * 24
    assert monitoring.schedule_gap_hours("Fri..Mon *-*-* 02:00:00") == 4 * 24
    assert monitoring.schedule_gap_hours("daily") == 24
    assert monitoring.schedule_gap_hours("*-*-* 03:00:00") == 24


def test_the_undeclared_rule_leaves_declared_and_system_roles_out() -> None:
    config = parse(valid_config())
    server = budget.compute(config)[0]
    excluded = monitoring.excluded_roles(config, server)
    assert {entry.role for entry in server.entries} <= set(excluded)
    assert {"postgres", MONITORING_ROLE} <= set(excluded)


def printed(*argv: str) -> tuple[int, str]:
    out = io.StringIO()
    with contextlib.redirect_stdout(out):
        code = alert_rules.main(list(argv))
    return code, out.getvalue()


def test_the_cli_prints_rules_or_queries_as_yaml() -> None:
    code, text = printed("prod")
    assert code == 0 and yaml.safe_load(text)["groups"]
    code, text = printed("prod", "--queries")
    assert code == 0 and "pgplatform_role_backends" in yaml.safe_load(text)
