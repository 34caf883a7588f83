"""The GitHub Actions workflows cannot run here: check their YAML and the structure that matters."""

from __future__ import annotations

import re
from typing import Any

import yaml

from postgres_platform.model.stackfile import ROOT

WORKFLOWS = ROOT / ".github" / "workflows"
PINNED = re.compile(r"^[\w.-]+/[\w.-]+@(v\d+\.\d+\.\d+|[0-9a-f]{40})$")


def load(name: str) -> dict[Any, Any]:
    document = yaml.safe_load((WORKFLOWS / name).read_text())
    assert isinstance(document, dict)
    return document


def steps(job: dict[str, Any]) -> list[dict[str, Any]]:
    return list(job["steps"])


def test_every_action_is_pinned_to_an_exact_version() -> None:
    for path in WORKFLOWS.glob("*.yml"):
        for job in load(path.name)["jobs"].values():
            for step in steps(job):
                if "uses" in step:
                    assert PINNED.match(step["uses"]), f"{path.name}: {step['uses']} is not pinned"


def test_pull_request_runs_tests_then_preflight_and_policy_preview_per_stack() -> None:
    workflow = load("pull_request.yml")
    assert "pull_request" in workflow[True]  # YAML 1.1 reads the key `on` as True
    jobs = workflow["jobs"]
    assert any(s.get("run") == "bash scripts/test.sh" for s in steps(jobs["test"]))
    preview = jobs["preview"]
    assert preview["needs"] == "test"
    assert preview["strategy"]["matrix"]["stack"] == ["staging", "prod"]
    runs = " ".join(s.get("run", "") for s in steps(preview))
    assert 'scripts/preflight.py ${{ matrix.stack }} --markdown >> "$GITHUB_STEP_SUMMARY"' in runs
    assert "scripts/policy_config.py ${{ matrix.stack }} > policy-config.json" in runs
    # The change impact against the base branch's stack file goes into the PR comment, and data loss fails.
    assert 'git show "FETCH_HEAD:Pulumi.${{ matrix.stack }}.yaml" > base.yaml' in runs
    assert "scripts/preflight.py ${{ matrix.stack }} --against base.yaml --markdown > impact.md" in runs
    assert "gh pr comment" in runs and 'exit "$status"' in runs
    (pulumi,) = [s for s in steps(preview) if s.get("uses", "").startswith("pulumi/actions@")]
    assert pulumi["with"]["command"] == "preview"
    assert pulumi["with"]["comment-on-pr"] is True
    assert (pulumi["with"]["policyPacks"], pulumi["with"]["policyPackConfigs"]) == ("policy", "policy-config.json")


def test_push_deploys_staging_then_prod_behind_an_environment() -> None:
    workflow = load("push.yml")
    assert workflow[True]["push"]["branches"] == ["main"]
    staging, prod = workflow["jobs"]["staging"], workflow["jobs"]["prod"]
    assert prod["needs"] == "staging"
    assert prod["environment"] == "production"
    for job, stack in ((staging, "staging"), (prod, "prod")):
        # The firewall admits SSH and 5432 from adminCidrs only: a self-hosted runner there, not GitHub's.
        assert job["runs-on"] == ["self-hosted", "postgres-platform-admin"]
        (pulumi,) = [s for s in steps(job) if s.get("uses", "").startswith("pulumi/actions@")]
        assert pulumi["with"]["command"] == "up"
        assert pulumi["with"]["stack-name"].endswith(f"/{stack}")
        assert pulumi["with"]["policyPacks"] == "policy"
    assert workflow["concurrency"]["cancel-in-progress"] is False


def test_the_test_job_runs_the_same_command_as_ci() -> None:
    assert "bash scripts/test.sh" in (ROOT / ".ci" / "run").read_text()
