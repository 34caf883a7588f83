"""scripts/preflight.py as a user runs it: exit codes, the --json contract, the text report."""

from __future__ import annotations

import contextlib
import io
import json
import subprocess
import sys
from pathlib import Path
from typing import Any

import pytest
import yaml

from postgres_platform.cli import preflight
from postgres_platform.model.stackfile import ROOT, read_stack_values, stack_file
from postgres_platform.offline import impact
from postgres_platform.offline.program import run_program
from postgres_platform.program.deploy import StackConfigError
from tests.helpers import BUILT_STACKS, STACKS

PREFLIGHT = [sys.executable, str(ROOT / "scripts" / "preflight.py")]


def run(*args: str) -> subprocess.CompletedProcess[str]:
    """preflight's main in this process (the script itself: test_the_script_is_the_same_command)."""
    out, err = io.StringIO(), io.StringIO()
    with contextlib.redirect_stdout(out), contextlib.redirect_stderr(err):
        code = preflight.main(list(args))
    return subprocess.CompletedProcess(["preflight", *args], code, out.getvalue(), err.getvalue())


def test_the_script_is_the_same_command() -> None:
    script = subprocess.run([*PREFLIGHT, "local", "--json"], capture_output=True, text=True, cwd=ROOT, timeout=120)
    assert script.returncode == 0, script.stderr
    assert json.loads(script.stdout) == json.loads(run("local", "--json").stdout)


@pytest.mark.parametrize("stack", STACKS)
def test_json_report_contract(stack: str) -> None:
    result = run(stack, "--json", "--require-secrets")
    report = json.loads(result.stdout)  # stdout holds only the JSON
    assert set(report) == {"stack", "servers", "resources", "policies", "versions", "secrets", "problems"}
    # The repository's stack files hold no secrets: a stack that needs one ran and found that problem.
    missing = [s["key"] for s in report["secrets"] if not s["present"]]
    assert result.returncode == (1 if missing else 0), result.stderr
    assert run(stack, "--json").returncode == 0  # without --require-secrets they are listed only
    assert [p["problem"].split(":")[0:2] for p in report["problems"]] == [k.split(":") for k in missing]
    assert all(set(p) == {"problem", "fix"} and k in p["fix"] for p, k in zip(report["problems"], missing, strict=True))
    for secret in report["secrets"]:
        assert set(secret) == {"key", "present", "neededFor"}
    # What the stack's images carry: the figures the real-container tests check the running servers report.
    if stack in BUILT_STACKS:
        assert report["versions"] == {
            "postgres": "17.12",
            "pgbackrest": "2.55.1",
            "patroni": "4.0.7",
            "pgbouncer": "1.24.1",
        }
    else:  # an adopted server runs its own Postgres: nothing this program ships
        assert "postgres" not in report["versions"]
    assert report["stack"] == stack
    for server in report["servers"]:
        assert set(server) == {"name", "maxConnections", "superuserReserved", "headroom", "entries", "total", "free"}
        assert server["total"] == sum(e["limit"] for e in server["entries"])
        free = server["maxConnections"] - server["superuserReserved"] - server["headroom"] - server["total"]
        assert server["free"] == free >= 0
        for entry in server["entries"]:
            assert set(entry) == {"role", "database", "limit", "kind", "direct"}
            assert entry["kind"] in ("app", "external", "system")
            assert entry["direct"] is None or (entry["kind"] == "app" and entry["direct"] >= 0)
    # A list of {type, count}, sorted by type (docs/command-line.md's JSON conventions).
    types = [r["type"] for r in report["resources"]]
    assert types == sorted(set(types)) and all(set(r) == {"type", "count"} for r in report["resources"])
    counts = {r["type"]: r["count"] for r in report["resources"]}
    assert counts["postgresql:index/role:Role"] >= 1
    assert all(isinstance(n, int) and n > 0 for n in counts.values())
    names = [p["name"] for p in report["policies"]]
    assert names == [
        "connection-budget",
        "bounded-roles",
        "no-public-database-ports",
        "pinned-images",
        "protected-data",
        "protected-databases",
        "secret-outputs",
        "role-memberships",
        "sql-steps",
        "host-network-listeners",
        "backups-configured",
    ]
    for policy in report["policies"]:
        assert set(policy) == {"name", "enforcement", "violations"}
        assert policy["enforcement"] in ("mandatory", "advisory")
        if policy["enforcement"] == "mandatory":
            assert policy["violations"] == []


def test_prod_json_holds_the_prod_budget() -> None:
    server, replica = json.loads(run("prod", "--json").stdout)["servers"]
    assert replica["name"] == "replica" and replica["entries"] == server["entries"]
    external = sum(e["limit"] for e in server["entries"] if e["kind"] == "external")
    apps = sum(e["limit"] for e in server["entries"] if e["kind"] == "app")
    assert (apps, external, server["total"], server["free"]) == (53, 28, 92, 2)  # 88 + monitoring 2 + pgBackRest 2


def test_text_report_lists_resources_and_budget() -> None:
    result = run("local")
    assert result.returncode == 0
    assert "docker:index/container:Container" in result.stdout
    assert "server primary: 72 of 100 max_connections promised, 28 free" in result.stdout


def test_config_error_is_one_line_and_exit_2(tmp_path: Path) -> None:
    """A bad config: preflight could not run (2); under --json the error is a JSON object on stdout."""
    stack = tmp_path / "Pulumi.broken.yaml"
    text = (ROOT / "Pulumi.local.yaml").read_text().replace("connectionLimit: 5}", "connectionLimit: -1}", 1)
    stack.write_text(text)
    result = run("--stack-file", str(stack), "--json")
    line = "apps.worker_app.connectionLimit: must be an integer >= 1, got -1"
    assert result.returncode == 2
    assert result.stderr.strip() == line
    out = json.loads(result.stdout)
    assert out["error"] == line and [p["problem"] for p in out["problems"]] == [line]


def test_missing_stack_file_exit_2() -> None:
    result = run("--stack-file", "/nonexistent/Pulumi.x.yaml")
    assert result.returncode == 2 and "no such stack file" in result.stderr


def test_mandatory_violation_exits_1_advisory_does_not(
    monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    from postgres_platform.cli import preflight
    from postgres_platform.offline.policies import PolicyResult

    monkeypatch.setattr(preflight, "evaluate", lambda run, config: [PolicyResult("pinned-images", "advisory", ["x"])])
    assert preflight.main(["local"]) == 0
    monkeypatch.setattr(preflight, "evaluate", lambda run, config: [PolicyResult("pinned-images", "mandatory", ["x"])])
    assert preflight.main(["local"]) == 1
    assert "pinned-images              mandatory 1 violation(s)" in capsys.readouterr().out


def test_a_violation_is_printed_with_its_policys_fix(
    monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    from policy.policies import POLICIES
    from postgres_platform.cli import preflight
    from postgres_platform.offline.policies import evaluate

    def one_violation(run: Any, config: Any) -> Any:
        results = evaluate(run, config)
        next(r for r in results if r.name == "pinned-images").violations.append("x")
        return results

    monkeypatch.setattr(preflight, "evaluate", one_violation)
    preflight.main(["local"])
    fix = next(p.remediation_steps for p in POLICIES if p.name == "pinned-images")
    assert fix and f"      - x\n      fix: {fix}\n" in capsys.readouterr().out


def test_markdown_has_budget_table_pie_and_policies() -> None:
    result = run("prod", "--markdown")
    assert result.returncode == 0, result.stderr
    text = result.stdout
    assert "| webhook_app | tracksolid_db | app | 10 |" in text
    assert "```mermaid\npie showData title primary: max_connections 102" in text
    assert '    "free" : 2' in text
    assert "| connection-budget | mandatory | pass |" in text


def local_with_a_database(tmp_path: Path) -> Path:
    new = tmp_path / "Pulumi.local.yaml"
    document = yaml.safe_load(stack_file("local").read_text())
    document["config"]["postgres-platform:databases"]["reports"] = {"schemas": ["public"]}
    new.write_text(yaml.safe_dump(document))
    return new


def test_against_runs_the_old_stack_aside_and_reports_what_two_runs_in_series_do(tmp_path: Path) -> None:
    old, new = stack_file("local"), local_with_a_database(tmp_path)
    result = run("--stack-file", str(new), "--against", str(old), "--json")
    assert result.returncode == 0, result.stderr
    report = json.loads(result.stdout)
    changes = report.pop("changes")
    summary = report.pop("summary")
    assert report == json.loads(run("--stack-file", str(new), "--json").stdout)
    serial = impact.compare(run_program("local", read_stack_values(old)), run_program("local", read_stack_values(new)))
    # The SDK registers from a thread pool: the order of resources, so of changes, is not the program's.
    assert sorted(map(json.dumps, changes)) == sorted(json.dumps(c.as_dict()) for c in serial)
    assert summary == impact.summary(serial) and summary["create"] == sum(c["action"] == "create" for c in changes) > 0
    assert changes == [c.as_dict() for c in serial]  # sorted: the same order however the SDK registered them


def test_against_raises_what_the_old_stacks_program_raises(tmp_path: Path) -> None:
    values = read_stack_values(local_with_a_database(tmp_path))
    old = read_stack_values(stack_file("local"))
    apps = json.loads(old["postgres-platform:apps"])
    apps["worker_app"]["connectionLimit"] = -1
    old["postgres-platform:apps"] = json.dumps(apps)
    with pytest.raises(StackConfigError) as caught:
        preflight.runs_aside("local", values, old)
    assert "apps.worker_app.connectionLimit: must be an integer >= 1, got -1" in str(caught.value)
