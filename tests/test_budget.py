"""The budget arithmetic of DESIGN.md, reproduced on the seed 000 prod numbers."""

from __future__ import annotations

from postgres_platform.model import budget
from postgres_platform.model.load import load_stack_values, parse
from postgres_platform.stackfile import read_stack_values, stack_file
from tests.helpers import valid_config


def test_prod_reproduces_seed_000() -> None:
    server, replica = budget.compute(load_stack_values(read_stack_values(stack_file("prod"))))
    assert (replica.name, replica.entries, replica.free) == ("replica", server.entries, server.free)
    by_kind: dict[str, int] = {}
    for entry in server.entries:
        by_kind[entry.kind] = by_kind.get(entry.kind, 0) + entry.limit
    by_db = {db: sum(e.limit for e in server.entries if e.database == db) for db in ("tracksolid_db", "fleet_platform")}
    assert by_db == {"tracksolid_db": 33, "fleet_platform": 20}
    assert by_kind == {"app": 53, "external": 28, "system": 7}  # one auth slot per app pool, plus one
    assert by_kind["app"] + by_kind["external"] == 81  # seed 000's "TOTAL ≈ 81"
    assert (server.max_connections, server.superuser_reserved, server.usable) == (100, 3, 97)
    assert server.total == 88
    assert server.free == 97 - 5 - 88


def test_entries_name_role_database_and_kind() -> None:
    (server,) = budget.compute(parse(valid_config()))
    assert [(e.role, e.database, e.limit, e.kind) for e in server.entries] == [
        ("webhook_app", "tracksolid_db", 10, "app"),
        ("worker_app", "tracksolid_db", 5, "app"),
        ("gateway_app", "fleet_platform", 15, "app"),
        ("grafana_ro", None, 5, "external"),
        ("pgbouncer_auth", None, 4, "system"),  # 3 app pools + 1
    ]
    as_dict = server.as_dict()
    assert as_dict["total"] == 39
    assert as_dict["free"] == 100 - 3 - 5 - 39


def test_table_shows_every_role_and_the_free_slots() -> None:
    (server,) = budget.compute(parse(valid_config()))
    table = budget.render_table(server)
    assert table.splitlines()[0] == "server primary: 47 of 100 max_connections promised, 53 free"
    for role in ("webhook_app", "worker_app", "gateway_app", "grafana_ro", "pgbouncer_auth", "admin headroom"):
        assert role in table
