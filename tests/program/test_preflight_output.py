"""preflight's output for people: the change report first with its summary, an over-budget config's table
in every format, the secrets `pulumi up` will need, no Python reprs, quiet on a closed pipe."""

from __future__ import annotations

import json
import re
import subprocess
import sys
from pathlib import Path
from typing import Any

import pytest
import yaml

from postgres_platform.model.stackfile import ROOT, stack_file
from postgres_platform.offline.impact import MARKERS
from tests.program.test_preflight import run

REPR = re.compile(r"\{'|\['|\(\'|\b(True|False|None)\b")  # what a dict, list, tuple, bool or None prints as


def local(tmp_path: Path, name: str, edit: Any) -> Path:
    document = yaml.safe_load(stack_file("local").read_text())
    edit(document["config"])
    path = tmp_path / name / "Pulumi.local.yaml"
    path.parent.mkdir()
    path.write_text(yaml.safe_dump(document))
    return path


def more(config: dict[str, Any]) -> None:
    """A new database and app, one app's limit raised: creates and updates."""
    config["postgres-platform:databases"]["reports"] = {"schemas": ["public"]}
    config["postgres-platform:apps"]["report_app"] = {"database": "reports", "access": "read", "connectionLimit": 3}
    config["postgres-platform:apps"]["webhook_app"]["connectionLimit"] = 12


def too_much(config: dict[str, Any]) -> None:
    more(config)
    config["postgres-platform:apps"]["report_app"]["connectionLimit"] = 30
    config["postgres-platform:apps"]["webhook_app"]["connectionLimit"] = 20


def test_against_prints_the_changes_first_with_a_summary_markers_and_property_names(tmp_path: Path) -> None:
    new = local(tmp_path, "new", more)
    text = run("--stack-file", str(new), "--against", str(stack_file("local")))
    assert text.returncode == 0, text.stderr
    data = json.loads(run("--stack-file", str(new), "--against", str(stack_file("local")), "--json").stdout)
    counts = data["summary"]
    first, *rest = text.stdout.splitlines()
    assert first == (
        f"changes from {stack_file('local')}: {counts['create']} to create, {counts['update']} to update, "
        f"{counts['replace']} to replace, {counts['delete']} to delete; {counts['dataLoss']} lose data, "
        f"{counts['interruption']} interrupt apps"
    )
    assert counts["create"] == sum(c["action"] == "create" for c in data["changes"]) > 0
    assert counts["update"] == sum(c["action"] == "update" for c in data["changes"]) > 0
    listed = rest[: len(data["changes"])]
    for line, change in zip(listed, data["changes"], strict=True):  # the JSON's order, which is sorted
        marker, resource, type_, action, *properties = line.split()
        assert (marker, resource, type_, action) == (
            MARKERS[change["action"]],
            change["resource"],
            change["type"],
            change["action"],
        )
        assert " ".join(properties) == ", ".join(change["properties"])
    webhook = next(c for c in data["changes"] if c["resource"] == "access-webhook_app")
    assert (webhook["action"], webhook["properties"]) == ("update", ["connectionLimit"])
    assert rest[len(data["changes"])] == "" and rest[len(data["changes"]) + 1].startswith("stack local")


def test_markdown_against_starts_with_the_summary(tmp_path: Path) -> None:
    new = local(tmp_path, "new", more)
    out = run("--stack-file", str(new), "--against", str(stack_file("local")), "--markdown").stdout
    lines = out.splitlines()
    assert lines[0].startswith("#### Changes from `Pulumi.local.yaml`")
    assert re.fullmatch(
        r"\*\*\d+ to create, \d+ to update, 0 to replace, 0 to delete; 0 lose data, 0 interrupt apps\*\*", lines[2]
    )
    assert "| ~ | access-webhook_app | postgresql:index/role:Role | update |  |  | connectionLimit |" in lines


@pytest.mark.parametrize("stack", ["local", "prod", "legacy"])
def test_no_python_reprs_in_the_text(stack: str, tmp_path: Path) -> None:
    for args in ([stack], [stack, "--markdown"]):
        out = run(*args).stdout
        assert out and not REPR.search(out), REPR.search(out)
    new = local(tmp_path, "new", more)
    out = run("--stack-file", str(new), "--against", str(stack_file("local"))).stdout
    assert not REPR.search(out), REPR.search(out)


def test_over_budget_prints_the_table_with_its_overflow_in_every_format(tmp_path: Path) -> None:
    over = local(tmp_path, "over", too_much)
    text = run("--stack-file", str(over))
    assert text.returncode == 1
    (line,) = text.stderr.strip().splitlines()  # one line, still naming the stack key
    assert line.startswith("postgres.maxConnections: connection budget of server primary does not fit")
    assert "13 over; the largest: report_app 30, webhook_app 20, gateway_app 15" in line
    assert "server primary: 113 of 100 max_connections promised, 13 OVER" in text.stdout
    assert re.search(r"^OVER BUDGET\s+-\s+overflow\s+13\s+-$", text.stdout, re.MULTILINE)
    assert re.search(r"^report_app\s+reports\s+app\s+30\s+0$", text.stdout, re.MULTILINE)

    as_json = run("--stack-file", str(over), "--json")
    assert as_json.returncode == 1
    report = json.loads(as_json.stdout)
    (server,) = report["servers"]
    assert server["free"] == -13 and {"role": "report_app", "limit": 30} in [
        {"role": e["role"], "limit": e["limit"]} for e in server["entries"]
    ]
    assert report["error"] == line and [p["problem"] for p in report["problems"]] == [line]
    assert all(set(p) == {"problem", "fix"} for p in report["problems"])
    (overflow,) = report["overBudget"]
    assert (overflow["server"], overflow["over"], overflow["grew"]) == ("primary", 13, None)
    assert overflow["largest"][0] == {"role": "report_app", "key": "apps.report_app.connectionLimit", "limit": 30}

    markdown = run("--stack-file", str(over), "--markdown")
    assert markdown.returncode == 1
    assert "| report_app | reports | app | 30 |" in markdown.stdout
    assert "| **OVER BUDGET** | - | overflow | **13** |" in markdown.stdout
    assert "**primary**: 113 of 100 connections promised, **13 over**" in markdown.stdout


def test_over_budget_against_the_old_stack_names_the_roles_that_grew(tmp_path: Path) -> None:
    old, over = local(tmp_path, "old", more), local(tmp_path, "over", too_much)
    result = run("--stack-file", str(over), "--against", str(old), "--json")
    assert result.returncode == 1
    (line,) = result.stderr.strip().splitlines()
    assert (
        "13 over; against Pulumi.local.yaml: report_app grew 3 -> 30 (+27, apps.report_app.connectionLimit), "
        "webhook_app grew 12 -> 20 (+8, apps.webhook_app.connectionLimit)"
    ) in line
    (overflow,) = json.loads(result.stdout)["overBudget"]
    assert [(g["role"], g["before"], g["limit"]) for g in overflow["grew"]] == [
        ("report_app", 3, 30),
        ("webhook_app", 12, 20),
    ]
    against_base = run("--stack-file", str(over), "--against", str(stack_file("local")))
    assert "report_app is new (+30, apps.report_app.connectionLimit)" in against_base.stderr


def test_a_missing_secret_is_listed_and_with_require_secrets_a_problem(tmp_path: Path) -> None:
    listed = run("legacy")
    assert listed.returncode == 0, listed.stderr
    assert re.search(r"^  postgres-platform:existingAdminPassword\s+MISSING", listed.stdout, re.MULTILINE)
    result = run("legacy", "--require-secrets")
    assert result.returncode == 1
    assert "postgres-platform:existingAdminPassword: `pulumi up` needs it" in result.stderr
    assert "policies:" in result.stdout and "server primary:" in result.stdout
    assert re.search(r"^  postgres-platform:existingAdminPassword\s+MISSING", result.stdout, re.MULTILINE)

    with_secret = tmp_path / "Pulumi.legacy.yaml"
    document = yaml.safe_load(stack_file("legacy").read_text())
    document["config"]["postgres-platform:existingAdminPassword"] = {"secure": "AAABAMadeUpCipherText"}
    with_secret.write_text(yaml.safe_dump(document))
    fixed = run("--stack-file", str(with_secret), "--json", "--require-secrets")
    assert fixed.returncode == 0, fixed.stderr
    report = json.loads(fixed.stdout)
    (secret,) = report["secrets"]
    assert (secret["key"], secret["present"]) == ("postgres-platform:existingAdminPassword", True)
    assert secret["neededFor"].startswith("target existing")
    assert report["problems"] == []


def test_a_closed_pipe_ends_quietly() -> None:
    """`preflight local | head -1`: the reader goes away before the report is written."""
    done = subprocess.run(
        f"{sys.executable} {ROOT / 'scripts' / 'preflight.py'} local --json | true; exit ${{PIPESTATUS[0]}}",
        shell=True,
        executable="/bin/bash",
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert "Traceback" not in done.stderr and "BrokenPipeError" not in done.stderr, done.stderr
    assert done.returncode in (0, 141), (
        done.returncode,
        done.stderr,
    )  # 0: the report fit in the pipe before `true` left
