"""An etcd member that lost its data (its host replaced, its disk lost) rejoins the cluster by itself,
against three real members of the shipped etcd image started from the spec the Hetzner stacks declare
(render.patroni.etcd_container and its ETCD_ENTRYPOINT). Without the entrypoint etcd refuses to start
it: its peers still count it under its old ID."""

from __future__ import annotations

import json
from typing import Any

from postgres_platform.cli import failover_drill
from postgres_platform.cli.failover_drill import ETCD_MEMBERS, Drill
from postgres_platform.harness.docker import docker
from postgres_platform.model.names import LOOPBACK


def etcdctl(d: Drill, via: str, *args: str) -> str:
    """etcdctl in member `via`'s container, against that member's own endpoint."""
    client, _ = d.etcd[via]
    argv = ["exec", f"{d.prefix}-{via}", "etcdctl", f"--endpoints=http://{LOOPBACK}:{client}", *args]
    return docker(*argv, timeout=30).stdout


def logged(d: Drill, member: str) -> str:
    done = docker("logs", f"{d.prefix}-{member}", timeout=30)
    return done.stdout + done.stderr


def members(d: Drill, via: str) -> dict[str, Any]:
    """name -> member, as etcd's member list has them (a static bootstrap names every member)."""
    listed = json.loads(etcdctl(d, via, "member", "list", "--write-out=json"))["members"]
    return {member["name"]: member for member in listed}


def test_a_member_that_lost_its_data_rejoins_under_a_new_id_and_a_restarted_one_keeps_its_own() -> None:
    with failover_drill.started() as d:
        d.start_etcd()
        lost, kept, third = ETCD_MEMBERS
        before = members(d, kept)
        assert sorted(before) == sorted(ETCD_MEMBERS)
        # A first create: none replaced its own entry, not even one started after the other two formed.
        assert not any("replacing its old ID" in logged(d, member) for member in ETCD_MEMBERS)
        etcdctl(d, kept, "put", "pgplat-rejoin", "written before the loss")

        d.replace_etcd_member(lost)

        after = members(d, kept)
        assert sorted(after) == sorted(ETCD_MEMBERS)  # three started members: the old ID gone, no stale one
        assert after[lost]["ID"] != before[lost]["ID"]
        assert after[lost]["peerURLs"] == before[lost]["peerURLs"]
        assert "replacing its old ID" in logged(d, lost)
        # The new member holds the data: a serializable read is served from its own copy.
        assert etcdctl(d, lost, "get", "pgplat-rejoin", "--consistency=s", "--print-value-only").strip() == (
            "written before the loss"
        )
        health = json.loads(etcdctl(d, kept, "endpoint", "health", "--cluster", "--write-out=json"))
        assert len(health) == 3 and all(endpoint["health"] for endpoint in health)

        docker("restart", "-t", "30", f"{d.prefix}-{third}", timeout=60)  # its data kept: the same member
        d.wait_etcd([third])
        assert members(d, kept)[third]["ID"] == before[third]["ID"]
