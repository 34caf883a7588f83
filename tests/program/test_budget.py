"""The budget arithmetic (docs/connection-budget.md), reproduced on the prod numbers."""

from __future__ import annotations

import pytest

from postgres_platform.model import budget
from postgres_platform.model.config import ConfigError
from postgres_platform.model.load import load_stack_values, parse
from postgres_platform.model.stackfile import read_stack_values, stack_file
from postgres_platform.offline.policies import evaluate
from postgres_platform.offline.policy_config import policy_config
from tests.helpers import run_of, valid_config


def test_prod_reproduces_its_budget() -> None:
    server, replica = budget.compute(load_stack_values(read_stack_values(stack_file("prod"))))
    assert (replica.name, replica.entries, replica.free) == ("replica", server.entries, server.free)
    by_kind: dict[str, int] = {}
    for entry in server.entries:
        by_kind[entry.kind] = by_kind.get(entry.kind, 0) + entry.limit
    by_db = {db: sum(e.limit for e in server.entries if e.database == db) for db in ("tracksolid_db", "fleet_platform")}
    assert by_db == {"tracksolid_db": 33, "fleet_platform": 20}
    # System: 7 auth slots (one per app pool, plus one), the monitoring role's 2 and 2 for pgBackRest
    # (a backup and a check).
    assert by_kind == {"app": 53, "external": 28, "system": 11}
    assert [(e.role, e.limit) for e in server.entries if e.kind == "system"] == [
        ("pgbouncer_auth", 7),
        ("pgplatform_monitor", 2),
        ("pgbackrest", 2),
    ]
    assert by_kind["app"] + by_kind["external"] == 81  # the six apps and four external roles: 81 slots
    assert (server.max_connections, server.superuser_reserved, server.usable) == (102, 3, 99)
    assert server.total == 92
    assert server.free == 99 - 5 - 92


def test_entries_name_role_database_and_kind() -> None:
    (server,) = budget.compute(parse(valid_config()))
    assert [(e.role, e.database, e.limit, e.kind) for e in server.entries] == [
        ("webhook_app", "tracksolid_db", 10, "app"),
        ("worker_app", "tracksolid_db", 5, "app"),
        ("gateway_app", "fleet_platform", 15, "app"),
        ("grafana_ro", None, 5, "external"),
        ("pgbouncer_auth", None, 4, "system"),  # 3 app pools + 1
        ("pgplatform_monitor", None, 2, "system"),  # the exporters' role
    ]
    as_dict = server.as_dict()
    assert as_dict["total"] == 41
    assert as_dict["free"] == 100 - 3 - 5 - 41


def test_table_shows_every_role_and_the_free_slots() -> None:
    (server,) = budget.compute(parse(valid_config()))
    table = budget.render_table(server)
    assert table.splitlines()[0] == "server primary: 49 of 100 max_connections promised, 51 free"
    for role in ("webhook_app", "worker_app", "gateway_app", "grafana_ro", "pgbouncer_auth", "admin headroom"):
        assert role in table


def test_reserved_connections_take_slots_in_the_config_and_in_the_policy_alike() -> None:
    config = valid_config()
    config["postgres"]["settings"] = {"reserved_connections": 60}  # PostgreSQL 16: for pg_use_reserved_connections
    lines = []
    try:
        parse(config)
    except ConfigError as exc:
        lines = exc.lines
    assert lines == [
        "postgres.maxConnections: connection budget of server primary does not fit: roles hold 41 + adminHeadroom 5 "
        "= 46 > 37 usable (maxConnections 100 - superuserReservedConnections 3 - reserved_connections 60), 9 over; "
        "the largest: gateway_app 15, webhook_app 10, grafana_ro 5 (lower their connectionLimit or raise "
        "maxConnections), got 100"
    ]
    config["postgres"]["settings"] = {"reserved_connections": 10}
    fits = budget.compute(parse(config))[0]
    assert (fits.usable, fits.free) == (87, 87 - 5 - 41)
    config["postgres"]["settings"] = {"reserved_connections": "ten"}
    with pytest.raises(ConfigError, match=r"postgres\.settings\.reserved_connections: must be an integer"):
        parse(config)


def test_the_policy_and_the_config_agree_about_every_stack() -> None:
    """One arithmetic: the policy over the declared resources finds the free slots the config computes."""
    for stack in ("local", "staging", "prod"):
        config = load_stack_values(read_stack_values(stack_file(stack)))
        (budget_policy,) = [r for r in evaluate(run_of(stack), policy_config(config)) if r.name == "connection-budget"]
        assert budget_policy.violations == [], stack
        # One slot fewer and both refuse: the config (a line) and the policy (a violation).
        raw = config.model_dump(by_alias=True, exclude_none=True)
        server = budget.compute(config)[0]
        raw["postgres"]["adminHeadroom"] += server.free + 1
        with pytest.raises(ConfigError, match="does not fit"):
            parse(raw)
        tighter = policy_config(config)
        tighter["connection-budget"]["adminHeadroom"] += server.free + 1
        (refused,) = [r for r in evaluate(run_of(stack), tighter) if r.name == "connection-budget"]
        assert refused.violations and all("roles and headroom hold" in v for v in refused.violations), stack
