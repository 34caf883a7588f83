"""The monitoring drill's own logic (pure): its copy of the rules, its verdict on a phase's firing set,
and the webhook receiver's view of Alertmanager's notifications."""

from __future__ import annotations

from postgres_platform.cli.monitor_drill import Firing, Receiver, drill_rules, phases
from postgres_platform.model.load import load_stack_values
from postgres_platform.model.stackfile import read_stack_values, stack_file
from postgres_platform.render import monitoring

LOCAL = load_stack_values(read_stack_values(stack_file("local")))


def test_the_drills_rules_are_the_stacks_but_for_their_waits() -> None:
    theirs, ours = monitoring.rules(LOCAL, "local"), drill_rules(LOCAL, "local")
    assert [r["alert"] for g in ours["groups"] for r in g["rules"]] == [
        r["alert"] for g in theirs["groups"] for r in g["rules"]
    ]
    pairs = [
        (a, b)
        for ga, gb in zip(theirs["groups"], ours["groups"], strict=True)
        for a, b in zip(ga["rules"], gb["rules"], strict=True)
    ]
    assert all(b["for"] == "0s" and {**b, "for": a["for"]} == a for a, b in pairs)
    assert any(a["for"] != "0s" for a, _ in pairs)  # the stack's copy keeps its waits


def test_a_phase_fails_on_a_missed_alert_and_on_another_apps() -> None:
    storm = next(p for p in phases("cron_app") if p.name == "storm")
    watchdog = Firing("Watchdog", None)
    hit = {watchdog, Firing("PostgresRoleConnections90", "cron_app"), Firing("PostgresRoleConnections75", "cron_app")}
    assert storm.problems(hit) == []
    assert storm.problems({watchdog}) == [
        "storm: missed PostgresRoleConnections75{role=cron_app}, PostgresRoleConnections90{role=cron_app}"
    ]
    assert storm.problems(hit | {Firing("PostgresRoleConnections90", "webhook_app")}) == [
        "storm: fired PostgresRoleConnections90{role=webhook_app}"
    ]
    down = next(p for p in phases("cron_app") if p.name == "down")
    assert down.problems({watchdog, Firing("ExporterDown", None), Firing("PostgresWalArchivingFailing", None)}) == []


def test_the_receiver_keeps_each_alerts_latest_status() -> None:
    receiver = Receiver()
    alert = {"fingerprint": "a", "labels": {"alertname": "PostgresRoleConnections90", "role": "cron_app"}}
    receiver.take(
        {
            "alerts": [
                {**alert, "status": "firing"},
                {"fingerprint": "w", "labels": {"alertname": "Watchdog"}, "status": "firing"},
            ]
        }
    )
    assert receiver.firing() == {Firing("PostgresRoleConnections90", "cron_app"), Firing("Watchdog", None)}
    receiver.take({"alerts": [{**alert, "status": "resolved"}]})
    assert receiver.firing() == {Firing("Watchdog", None)}
