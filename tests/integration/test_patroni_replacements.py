"""A member's container replaced only while the other member leads (components/patroni.py
MemberReplacements: render/patroni_rolling.py's `lead` in a member's container, as the Hetzner stacks run
it), against the drill's real cluster under the writers' load, in the order `pulumi up` runs it for a new
image: pg0 leads; pg1's container replaced; pg1 leads; pg0's container replaced; pg0 leads again. No
failed transaction, no acknowledged commit lost, both members on the new image, pg0 leading."""

from __future__ import annotations

import dataclasses
import json
import subprocess
import time

from postgres_platform.cli import failover_drill
from postgres_platform.cli.failover_drill import SETTLE, Drill, Member, Writers, _wait
from postgres_platform.harness.docker import docker
from postgres_platform.model.images import POSTGRES_17
from postgres_platform.model.names import LOOPBACK
from postgres_platform.ops.patroni import Patroni, member_problems
from postgres_platform.render.patroni import REST_USER, lead_command

GRACE = 2  # the drill's HAProxy marks a member up one check (1 s) after it answers 200
NEW_IMAGE = "postgres-platform/postgres:rolled-by-test"  # the shipped image under another reference


def lead(d: Drill, runs_in: str, to: str) -> subprocess.CompletedProcess[str]:
    """What MemberReplacements runs on a host, from `runs_in`'s container; the drill's one PgBouncer
    stands for both hosts'."""
    console = f"host={LOOPBACK} port={d.pgbouncer_port} dbname=pgbouncer user=drill_admin"
    member = d.members[runs_in]
    command = lead_command(member.container, member.rest, {runs_in: console}, GRACE, to)
    secrets = {"rest": f"{REST_USER}:{d.passwords['rest']}", "poolers": {runs_in: d.admin_password}}
    return subprocess.run(
        ["sh", "-c", command], input=json.dumps(secrets), capture_output=True, text=True, timeout=900, check=False
    )


def replace(member: Member, image: str) -> None:
    """As the docker provider replaces it (delete before replace): stopped with the spec's signal and
    grace, removed, started again from the spec with the new image on the same mounts."""
    assert member.spec is not None
    docker("stop", "--time", str(member.spec.stop_seconds), member.container, timeout=member.spec.stop_seconds + 30)
    docker("rm", member.container)
    docker(*dataclasses.replace(member.spec, image=image).docker_run(member.sources)[1:])


def image_of(member: Member) -> str:
    return docker("inspect", "--format", "{{.Config.Image}}", member.container).stdout.strip()


def test_a_new_image_replaces_each_member_while_the_other_leads_with_no_failed_transaction() -> None:
    with failover_drill.started() as d:
        failover_drill.start_cluster(d)
        docker("tag", POSTGRES_17.reference, NEW_IMAGE)
        pg0, pg1 = d.members["pg0"], d.members["pg1"]
        try:
            with Writers(d.pooled_dsn()) as writers:
                _wait("writes through PgBouncer", 30, lambda: writers.last_ack > 0)
                done = lead(d, "pg0", "pg0")  # before the replica's replacement: pg0 leads already
                assert (done.returncode, done.stdout.strip()) == (0, "pg0 leads already"), done.stderr
                replace(pg1, NEW_IMAGE)
                done = lead(d, "pg1", "pg1")  # waits for pg1 to stream again as the synchronous standby
                assert (done.returncode, done.stdout.strip()) == (0, "pg1: leads (switched over from pg0)"), done
                _wait("the proxy routing to pg1", 30, lambda: d.routed_to(pg1))
                replace(pg0, NEW_IMAGE)
                done = lead(d, "pg0", "pg0")
                assert (done.returncode, done.stdout.strip()) == (0, "pg0: leads (switched over from pg1)"), done
                _wait("the proxy routing to pg0", 30, lambda: d.routed_to(pg0))
                time.sleep(SETTLE)
        finally:
            docker("rmi", NEW_IMAGE, check=False)
        assert (image_of(pg0), image_of(pg1)) == (NEW_IMAGE, NEW_IMAGE)
        _wait("pg1 streaming again", 120, lambda: d.streaming_replica(pg1, sync=True))
        assert member_problems(Patroni(pg0.rest).cluster()) == []
        phase = writers.phases["failover"]
        assert phase.failed == 0
        assert len(phase.acknowledged) > 0
        assert d.lost(pg0, list(phase.acknowledged)) == 0
