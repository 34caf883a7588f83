"""Offline change impact: what `pulumi up` would do between two configs, and what it costs the apps."""

from __future__ import annotations

import dataclasses
import json
from pathlib import Path
from typing import Any

import pulumi
import pytest
import yaml

from postgres_platform.cli import preflight
from postgres_platform.model.images import BUILDS, POSTGRES_17
from postgres_platform.model.stackfile import read_stack_values, stack_file
from postgres_platform.offline.impact import Change, compare
from postgres_platform.offline.program import RecordingMocks, run_program
from tests.helpers import run_of
from tests.program.test_failover_plan import with_failover

CONTAINER = "docker:index/container:Container"


def values_of(stack: str, edit: Any = None) -> dict[str, Any]:
    document = yaml.safe_load(stack_file(stack).read_text())
    config = document["config"]
    if edit is not None:
        edit(config)
    return {k: v if isinstance(v, str) else json.dumps(v) for k, v in config.items()}


def changes(stack: str, edit: Any, recorder: RecordingMocks | None = None) -> list[Change]:
    return compare(run_of(stack), run_program(stack, values_of(stack, edit), recorder=recorder))


def apps(config: dict[str, Any]) -> dict[str, Any]:
    result: dict[str, Any] = config["postgres-platform:apps"]
    return result


def harmless(found: list[Change]) -> None:
    assert found, "expected some change"
    assert not [c for c in found if c.data_loss or c.interruption], found
    assert not [c for c in found if c.type == CONTAINER], found  # no container is touched at all


@pytest.mark.parametrize("stack", ["local", "prod"])
def test_adding_tuning_or_removing_an_app_replaces_and_interrupts_nothing(stack: str) -> None:
    def add(config: dict[str, Any]) -> None:
        apps(config)["billing_app"] = {"database": "fleet_platform", "access": "write", "connectionLimit": 1}

    def tune(config: dict[str, Any]) -> None:
        apps(config)["webhook_app"] |= {"connectionLimit": 9, "statementTimeoutMs": 1000}

    def remove(config: dict[str, Any]) -> None:
        del apps(config)["cron_app"]

    added, tuned, removed = changes(stack, add), changes(stack, tune), changes(stack, remove)
    for found in (added, tuned, removed):
        harmless(found)
        assert not [c for c in found if c.action == "replace"], found
    assert {(c.resource, c.action) for c in added} >= {
        ("access-billing_app", "create"),
        ("pgbouncer-config-write", "update"),
    }
    assert ("access-webhook_app", "update") in {(c.resource, c.action) for c in tuned}
    assert {(c.resource, c.action) for c in removed} >= {
        ("access-cron_app", "delete"),
        ("access-cron_app-retirement", "delete"),
    }


def test_rotating_an_alternating_login_replaces_only_its_password() -> None:
    def alternating(rotation: int) -> Any:
        def edit(config: dict[str, Any]) -> None:
            apps(config)["cron_app"]["rotation"] = rotation
            config["postgres-platform:postgres"]["maxConnections"] = 110  # both logins hold cron_app's 5

        return edit

    before = run_program("prod", values_of("prod", alternating(0)))
    found = compare(before, run_program("prod", values_of("prod", alternating(1))))
    harmless(found)
    assert [(c.resource, c.action) for c in found if c.action == "replace"] == [
        ("access-cron_app_b-password", "replace")
    ]


class RenewedCertificates(RecordingMocks):
    """As after `early_renewal_hours`: every server certificate is a new one."""

    def new_resource(self, args: pulumi.runtime.MockResourceArgs) -> tuple[str | None, dict[str, Any]]:
        resource_id, state = super().new_resource(args)
        if args.typ == "tls:index/locallySignedCert:LocallySignedCert":
            state["certPem"] = "-----BEGIN CERTIFICATE-----\nrenewed\n-----END CERTIFICATE-----\n"
        return resource_id, state


def test_renewed_certificates_reach_the_servers_by_reload() -> None:
    found = changes("prod", None, recorder=RenewedCertificates())
    harmless(found)
    assert {c.resource for c in found} == {"postgres-config-write", "pgbouncer-config-write", "replica-config-write"}


def test_a_restart_setting_restarts_postgres_gracefully_and_a_reloadable_one_does_not() -> None:
    def more_connections(config: dict[str, Any]) -> None:
        config["postgres-platform:postgres"]["maxConnections"] = 120

    def more_work_mem(config: dict[str, Any]) -> None:
        config["postgres-platform:postgres"].setdefault("settings", {})["work_mem"] = "16MB"

    restarted = changes("prod", more_connections)
    assert {(c.resource, c.action, c.interruption, c.data_loss) for c in restarted if c.type == CONTAINER} == {
        ("postgres-container", "replace", True, False),
        ("replica-container", "replace", True, False),
    }
    assert not [c for c in restarted if c.data_loss]
    harmless(changes("prod", more_work_mem))


@pytest.mark.parametrize(("tag", "major", "lost"), [("18.1-deb14u1", "18", True), ("17.13-deb13u1", "17", False)])
def test_a_new_postgres_major_is_refused_as_data_loss_and_a_minor_is_not(
    monkeypatch: pytest.MonkeyPatch, tag: str, major: str, lost: bool
) -> None:
    """A server of another major cannot open the data directory (and the old container is gone first)."""
    build = dataclasses.replace(
        POSTGRES_17,
        reference=f"postgres-platform/postgres:{tag}",
        build_args={**POSTGRES_17.build_args, "POSTGRES_MAJOR": major},
    )
    monkeypatch.setitem(BUILDS, build.reference, build)

    def upgrade(config: dict[str, Any]) -> None:
        config["postgres-platform:postgres"]["image"] = build.reference

    found = {(c.resource, c.action, c.data_loss) for c in changes("prod", upgrade) if c.type == CONTAINER}
    assert found == {("postgres-container", "replace", lost), ("replica-container", "replace", lost)}


def test_renaming_a_database_is_data_loss() -> None:
    def rename(config: dict[str, Any]) -> None:
        databases = config["postgres-platform:databases"]
        databases["fleet"] = databases.pop("fleet_platform")
        for spec in apps(config).values():
            if spec["database"] == "fleet_platform":
                spec["database"] = "fleet"

    lost = {(c.resource, c.action) for c in changes("local", rename) if c.data_loss}
    assert lost == {
        ("access-fleet_platform", "delete"),
        ("access-fleet_platform-public", "delete"),
        ("access-fleet_platform-pgbouncer", "delete"),
    }


def test_preflight_against_reports_changes_in_json_and_refuses_data_loss(tmp_path: Path, capsys: Any) -> None:
    old = tmp_path / "Pulumi.local.old.yaml"
    old.write_text(stack_file("local").read_text())
    new = tmp_path / "Pulumi.local.yaml"
    document = yaml.safe_load(old.read_text())
    document["config"]["postgres-platform:databases"]["reports"] = {"schemas": ["public"]}
    new.write_text(yaml.safe_dump(document))
    assert preflight.main(["--stack-file", str(new), "--against", str(old), "--json"]) == 0
    report = json.loads(capsys.readouterr().out)
    assert {
        "resource": "access-reports",
        "type": "postgresql:index/database:Database",
        "action": "create",
        "dataLoss": False,
        "interruption": False,
        "properties": [],
    } in report["changes"]
    # The properties that change (camelCase, as in the stack's resources): for each update, none for a create.
    updates = {c["resource"]: c["properties"] for c in report["changes"] if c["action"] == "update"}
    assert updates and all(updates.values()), updates
    assert all(c["properties"] == [] for c in report["changes"] if c["action"] in ("create", "delete"))
    assert set(report) == {
        "stack",
        "servers",
        "resources",
        "policies",
        "versions",
        "secrets",
        "problems",
        "summary",
        "changes",
    }
    assert report["problems"] == [] and report["summary"]["delete"] == 0

    assert preflight.main(["--stack-file", str(old), "--against", str(new), "--json"]) == 1  # the reverse drops it
    captured = capsys.readouterr()
    assert "refused: these changes lose data: access-reports" in captured.err
    reverse = json.loads(captured.out)
    lost = [c["resource"] for c in reverse["changes"] if c["dataLoss"]]
    assert reverse["summary"]["dataLoss"] == len(lost) and "access-reports" in lost
    assert [p["problem"] for p in reverse["problems"]] == [f"refused: these changes lose data: {', '.join(lost)}"]
    assert preflight.main(["--stack-file", str(old), "--against", str(new), "--json", "--accept-data-loss"]) == 0
    assert read_stack_values(old) == read_stack_values(stack_file("local"))


def test_the_load_balancer_changes_type_in_place_and_dropping_it_interrupts() -> None:
    """With failover every DSN names the load balancer: a new type is Hetzner's ChangeType, an update;
    turning failover off deletes it and its services, which the report must call an interruption."""
    base = run_program("prod", with_failover("prod", {"enabled": True}, maxConnections=120))
    bigger = run_program(
        "prod", with_failover("prod", {"enabled": True, "loadBalancerType": "lb21"}, maxConnections=120)
    )
    (resized,) = [c for c in compare(base, bigger) if c.type == "hcloud:index/loadBalancer:LoadBalancer"]
    assert (resized.action, resized.interruption, resized.inputs) == ("update", False, ("loadBalancerType",))
    dropped = compare(base, run_program("prod", with_failover("prod", {"enabled": False}, maxConnections=120)))
    removed = {c.type: c for c in dropped if c.type.startswith("hcloud:index/loadBalancer")}
    assert set(removed) == {
        "hcloud:index/loadBalancer:LoadBalancer",
        "hcloud:index/loadBalancerNetwork:LoadBalancerNetwork",
        "hcloud:index/loadBalancerService:LoadBalancerService",
        "hcloud:index/loadBalancerTarget:LoadBalancerTarget",
    }
    assert all(c.action == "delete" for c in removed.values())
    assert removed["hcloud:index/loadBalancerService:LoadBalancerService"].interruption
    assert removed["hcloud:index/loadBalancer:LoadBalancer"].interruption
