"""Patroni's cluster as the tools read it: GET /cluster, what live says of it, the member a switchover picks."""

from __future__ import annotations

from typing import Any

import pytest

from postgres_platform.ops.patroni import Member, member_problems, members
from postgres_platform.ops.switchover import SwitchoverError, choose

# As Patroni 4 answers GET /cluster (a replica not streaming reports its lag as "unknown").
CLUSTER: dict[str, Any] = {
    "members": [
        {"name": "db-1", "role": "leader", "state": "running", "host": "10.0.1.10", "port": 5432, "timeline": 3},
        {"name": "db-2", "role": "sync_standby", "state": "streaming", "host": "10.0.1.11", "port": 5432, "lag": 40},
        {"name": "db-3", "role": "replica", "state": "streaming", "host": "10.0.1.12", "port": 5432, "lag": 0},
        {"name": "db-4", "role": "replica", "state": "starting", "host": "10.0.1.13", "port": 5432, "lag": "unknown"},
    ],
    "scope": "prod",
}


def test_the_members_of_the_cluster() -> None:
    found = {m.name: m for m in members(CLUSTER)}
    assert found["db-1"] == Member("db-1", "leader", "running", "10.0.1.10", 5432, None, 3, ())
    assert found["db-2"].lag == 40 and found["db-4"].lag is None


def test_the_synchronous_standby_comes_first_then_the_least_behind() -> None:
    leader, candidate = choose(members(CLUSTER), None)
    assert (leader.name, candidate.name) == ("db-1", "db-2")  # no acknowledged commit is only on the leader
    without_sync = [m for m in members(CLUSTER) if m.name != "db-2"]
    assert choose(without_sync, None)[1].name == "db-3"
    assert choose(members(CLUSTER), "10.0.1.12")[1].name == "db-3"  # by host


@pytest.mark.parametrize(
    ("to", "drop", "error"),
    [
        ("db-9", (), "--to: no member named db-9; members: db-1, db-2, db-3, db-4"),
        ("db-1", (), "--to: db-1 is the leader already"),
        ("db-4", (), "no replica is ready to take over (db-4 starting)"),
        (None, ("db-2", "db-3", "db-4"), "no replica is ready to take over (no replica)"),
        (None, ("db-1",), "the cluster has 0 leaders (): not one"),
    ],
)
def test_a_switchover_that_cannot_start_says_why(to: str | None, drop: tuple[str, ...], error: str) -> None:
    with pytest.raises(SwitchoverError) as raised:
        choose([m for m in members(CLUSTER) if m.name not in drop], to)
    assert str(raised.value) == error


def test_what_live_says_of_the_members() -> None:
    assert member_problems(members(CLUSTER), maximum_lag=1048576) == [
        {
            "problem": "replica db-4 is starting: no failover to it",
            "fix": "read its Patroni log (docker logs on 10.0.1.13); it rejoins by itself once Postgres runs",
        }
    ]
    behind = member_problems(members(CLUSTER), maximum_lag=10)
    assert behind[0]["problem"] == "replica db-2 is 40 bytes behind, more than maximumLagOnFailover 10"
    no_leader = [m for m in members(CLUSTER) if m.role != "leader"]
    assert member_problems(no_leader)[0]["problem"] == "0 running leaders in the cluster ()"


def test_a_member_pending_a_restart_is_a_problem_naming_the_settings() -> None:
    pending = {"pending_restart": True, "pending_restart_reason": {"shared_buffers": {}, "max_connections": {}}}
    cluster = {"members": [{**CLUSTER["members"][0], **pending}, CLUSTER["members"][1]]}
    found = members(cluster)
    assert found[0].pending_restart == ("max_connections", "shared_buffers") and found[1].pending_restart == ()
    (problem,) = member_problems(found)
    assert problem["problem"] == "db-1 is pending a restart (max_connections, shared_buffers not applied yet)"
    assert "pulumi up" in problem["fix"]
    bare = members({"members": [{**CLUSTER["members"][0], "pending_restart": True}]})  # no reason given
    assert bare[0].pending_restart == ("unknown",)
