"""The ordered restart the Hetzner stacks run after a PATCH (render/patroni_rolling.py, in a member's
container as PatroniRestarts runs it), against the drill's real cluster under the writers' load: a
restart-only setting raised, then lowered, lands on both members by restarts (replica first, the leader
in place, PgBouncer paused around each), with no failed transaction, no acknowledged commit lost, no
member pending a restart and the same leader."""

from __future__ import annotations

import json
import subprocess
import time
from typing import Any

from postgres_platform.cli import failover_drill
from postgres_platform.cli.failover_drill import PARAMETERS, SETTLE, Drill, Writers, _get, _wait
from postgres_platform.model.names import LOOPBACK
from postgres_platform.ops.patroni import Patroni, member_problems
from postgres_platform.render.patroni import REST_USER, restart_command
from tests.integration.test_patroni_config import patch, show

GRACE = 2  # the drill's HAProxy marks a member up one check (1 s) after it answers 200


def ordered_restart(d: Drill, runs_in: str) -> subprocess.CompletedProcess[str]:
    """What PatroniRestarts runs on db-1's host, in `runs_in`'s container; both members behind the drill's
    one PgBouncer."""
    console = f"host={LOOPBACK} port={d.pgbouncer_port} dbname=pgbouncer user=drill_admin"
    names = list(d.members)
    command = restart_command(
        d.members[runs_in].container, d.members[runs_in].rest, {name: console for name in names}, GRACE
    )
    secrets = {"rest": f"{REST_USER}:{d.passwords['rest']}", "poolers": {name: d.admin_password for name in names}}
    return subprocess.run(
        ["sh", "-c", command], input=json.dumps(secrets), capture_output=True, text=True, timeout=600, check=False
    )


def pending(d: Drill) -> list[str]:
    problems = member_problems(Patroni(d.members["pg0"].rest).cluster())
    return [p["problem"] for p in problems if "pending a restart" in p["problem"]]


def members(d: Drill) -> dict[str, dict[str, Any]]:
    return {m["name"]: m for m in _get(d.members["pg0"].rest + "/cluster")[1]["members"]}


def test_a_restart_only_setting_raised_then_lowered_restarts_replica_first_with_no_failed_transaction() -> None:
    with failover_drill.started() as d:
        failover_drill.start_cluster(d)
        before = {m: show(d, m, "max_connections")[1] for m in d.members}
        done = ordered_restart(d, "pg0")  # nothing changed: nothing restarted
        assert (done.returncode, done.stdout.strip()) == (0, "no member is pending a restart"), done.stderr
        assert {m: show(d, m, "max_connections")[1] for m in d.members} == before
        with Writers(d.pooled_dsn()) as writers:
            _wait("writes through PgBouncer", 30, lambda: writers.last_ack > 0)
            for value in ("150", "120"):  # up: replica then leader; down: the replica again after the leader
                started = {m: show(d, m, "max_connections")[1] for m in d.members}
                done = patch(d, {**PARAMETERS, "max_connections": value}, d.passwords["rest"])
                assert done.returncode == 0, done.stderr
                # What `live --patroni-url` reports meanwhile: the members pending, naming the setting.
                _wait("live reporting the pending restarts", 60, lambda: len(pending(d)) == 2)
                assert all("(max_connections not applied yet)" in line for line in pending(d))
                done = ordered_restart(d, "pg0")
                assert done.returncode == 0, done.stderr
                lines = done.stdout.splitlines()
                assert lines.index("pg1: restarted (replica)") < lines.index("pg0: restarted (primary)"), lines
                for m in d.members:
                    now, postmaster = show(d, m, "max_connections")
                    assert (now, postmaster > started[m]) == (value, True), m
                found = members(d)
                assert found["pg0"]["role"] == "leader", found
                assert not any(m.get("pending_restart") for m in found.values()), found
                assert member_problems(Patroni(d.members["pg0"].rest).cluster()) == []
            time.sleep(SETTLE)
        phase = writers.phases["failover"]
        assert phase.failed == 0
        assert len(phase.acknowledged) > 0
        assert d.lost(d.members["pg0"], list(phase.acknowledged)) == 0
