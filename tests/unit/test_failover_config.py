"""hetzner.failover: its defaults, and every bad input one line naming the key and the value."""

from __future__ import annotations

from typing import Any

import pytest

from postgres_platform.model import budget
from postgres_platform.model.config import ConfigError, FailoverConfig
from postgres_platform.model.load import parse
from tests.helpers import valid_config
from tests.unit.test_config import HETZNER, S3_BACKUP


def hetzner_config(failover: dict[str, Any] | None, replicas: int = 1, **postgres: Any) -> dict[str, Any]:
    config = valid_config()
    config["target"] = "hetzner"
    config["backup"] = S3_BACKUP
    config["hetzner"] = {**HETZNER, "replicas": replicas, **({"failover": failover} if failover is not None else {})}
    config["postgres"] = {**config["postgres"], **postgres}
    return config


def errors_of(config: dict[str, Any]) -> list[str]:
    with pytest.raises(ConfigError) as caught:
        parse(config)
    return caught.value.lines


def test_absent_means_off_and_enabled_means_synchronous() -> None:
    off = parse(hetzner_config(None)).hetzner
    assert off is not None and off.failover == FailoverConfig() and not off.failover.enabled
    assert not off.failover.synchronous and off.witness_ips() == [] and off.etcd_member_ips() == []
    on = parse(hetzner_config({"enabled": True})).hetzner
    assert on is not None and on.failover.synchronous  # the default when enabled: no acknowledged commit lost
    assert on.witness_ips() == ["10.0.1.12"] and on.load_balancer_ip() == "10.0.1.5"
    assert on.etcd_member_ips() == ["10.0.1.10", "10.0.1.11", "10.0.1.12"]
    three = parse(hetzner_config({"enabled": True, "witnesses": 3})).hetzner
    assert three is not None and three.etcd_member_ips()[-1] == "10.0.1.14"  # a /28 still holds them


@pytest.mark.parametrize(
    ("failover", "replicas", "expected"),
    [
        (
            {"enabled": True},
            0,
            "hetzner.failover.synchronousMode: synchronous_mode with no replica: no commit could be acknowledged "
            "(set hetzner.replicas 1), got true",
        ),
        (
            {"enabled": True, "synchronousMode": False},
            0,
            "hetzner.failover.enabled: failover with no replica: nothing to promote (set hetzner.replicas 1), got true",
        ),
        (
            {"enabled": True, "witnesses": 0},
            1,
            "hetzner.failover.witnesses: makes 2 etcd members (2 database hosts and 0 witnesses): an even number "
            "survives no more lost members than one fewer, use an odd total, got 0",
        ),
        (
            {"enabled": True, "witnesses": 2},
            1,
            "hetzner.failover.witnesses: makes 4 etcd members (2 database hosts and 2 witnesses): an even number "
            "survives no more lost members than one fewer, use an odd total, got 2",
        ),
        (
            {"enabled": True, "restApiPort": 6432},
            1,
            "hetzner.failover.restApiPort: clashes with PgBouncer's port, got 6432",
        ),
        ({"enabled": True, "etcdClientPort": 5432}, 1, "hetzner.failover.etcdClientPort: clashes with Postgres' port"),
        ({"enabled": True, "etcdPeerPort": 22}, 1, "hetzner.failover.etcdPeerPort: clashes with SSH's port, got 22"),
        (
            {"enabled": True, "etcdPeerPort": 2379},
            1,
            "hetzner.failover.etcdPeerPort: clashes with hetzner.failover.etcdClientPort, got 2379",
        ),
        (
            {"enabled": True, "ttl": 18},
            1,
            "hetzner.failover.ttl: must be at least loopWait + 2 x retryTimeout (19), got 18",
        ),
        (
            {"enabled": True, "synchronousMode": False, "synchronousModeStrict": True},
            1,
            "hetzner.failover.synchronousModeStrict: needs hetzner.failover.synchronousMode true",
        ),
        ({"enabled": True, "witnesses": 4}, 1, "hetzner.failover.witnesses: must be an integer <= 3, got 4"),
        ({"enabled": True, "watchdog": "on"}, 1, "hetzner.failover.watchdog: must be 'off', 'automatic' or 'required'"),
        ({"enabled": "yes"}, 1, 'hetzner.failover.enabled: must be a valid boolean, got "yes"'),
        ({"enabled": True, "restApiPort": 0}, 1, "hetzner.failover.restApiPort: must be an integer >= 1, got 0"),
        ({"enable": True}, 1, "hetzner.failover.enable: is not a known setting, got true"),
    ],
)
def test_bad_failover_config_is_one_line(failover: dict[str, Any], replicas: int, expected: str) -> None:
    lines = errors_of(hetzner_config(failover, replicas))
    assert len([line for line in lines if line.startswith("hetzner.failover")]) == 1, lines
    assert any(line.startswith(expected) for line in lines), lines


def test_a_disabled_section_is_not_checked_beyond_its_fields() -> None:
    # Off, its ports and members are nobody's: a half-written section does not block the stack.
    config = parse(hetzner_config({"enabled": False, "restApiPort": 6432, "witnesses": 0}, replicas=0))
    assert config.hetzner is not None and config.hetzner.etcd_member_ips() == []


def test_patroni_holds_slots_on_both_servers_and_walsenders_are_counted() -> None:
    config = parse(hetzner_config({"enabled": True}))
    for server in budget.compute(config):
        (patroni,) = [e for e in server.entries if e.role == budget.PATRONI]
        assert (patroni.limit, patroni.kind, patroni.key) == (3, "system", "hetzner.failover")
    without = parse(hetzner_config(None))
    assert sum(e.limit for e in budget.entries(config)) - sum(e.limit for e in budget.entries(without)) == 3
    (walsenders,) = budget.wal_sender_entries(config)
    assert (walsenders.role, walsenders.limit) == ("replicator", 3)
    assert [e.limit for e in budget.wal_sender_entries(without)] == [2]
    (line,) = errors_of(hetzner_config({"enabled": True}, settings={"max_wal_senders": 2}))
    assert line == (
        "postgres.settings.max_wal_senders: leaves 2 walsenders, the replication role may need 3 (a stream and "
        "a base backup), got 2"
    )


def test_patroni_can_push_a_tight_budget_over() -> None:
    # valid_config() on a 40-slot server: fits without Patroni, 3 more do not.
    slots = sum(e.limit for e in budget.entries(parse(hetzner_config(None)))) + 5 + 3
    assert parse(hetzner_config(None, maxConnections=slots))
    lines = errors_of(hetzner_config({"enabled": True}, maxConnections=slots))
    assert [line.split(" does not fit")[0] for line in lines] == [
        f"postgres.maxConnections: connection budget of server {server}" for server in ("primary", "replica")
    ]


def test_the_config_feeds_the_patroni_renderer_and_its_role_names_are_reserved() -> None:
    from postgres_platform.model.names import REWIND_ROLE
    from postgres_platform.render import patroni

    assert REWIND_ROLE == patroni.REWIND_USER
    failover = FailoverConfig(enabled=True)
    dcs = patroni.dynamic_config(parameters={}, **patroni.durability(failover))
    assert (dcs["synchronous_mode"], dcs["maximum_lag_on_failover"], dcs["ttl"]) == (True, 1048576, 20)
    config = hetzner_config({"enabled": True})
    config["apps"]["rewind_user"] = {"database": "fleet_platform", "access": "read", "connectionLimit": 1}
    assert 'apps.rewind_user: role name is taken by Patroni\'s pg_rewind role, got "rewind_user"' in errors_of(config)
