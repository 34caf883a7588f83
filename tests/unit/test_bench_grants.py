"""The grant check benchmark's pure parts: its stack, its tables and how it counts queries."""

from __future__ import annotations

from types import SimpleNamespace
from typing import Any

import psycopg
import pytest

from postgres_platform.cli import bench_grants


def test_the_tables_are_spread_over_every_database_and_created_by_its_owner() -> None:
    config = bench_grants.generated_config(20)
    assert len(config.apps) == 20 and len(config.databases) == 2
    scripts = bench_grants.table_scripts(config, 3001)
    assert set(scripts) == {"db_000", "db_001"}
    for database, script in scripts.items():
        lines = script.splitlines()
        assert lines[0] == f'SET ROLE "{database}_owner";'
        assert all(line.startswith('CREATE TABLE IF NOT EXISTS "public"."t') for line in lines[1:])
    assert [script.count("CREATE TABLE") for script in scripts.values()] == [1501, 1500]
    assert '"public"."t03000"' in scripts["db_000"] and '"public"."t00001"' in scripts["db_001"]
    assert set(bench_grants.table_scripts(config, 1)) == {"db_000"}  # no script for a database without tables


def test_queries_are_counted_by_the_database_of_their_connection(monkeypatch: pytest.MonkeyPatch) -> None:
    sent: list[str] = []

    def send(self: Any, query: str, *args: Any, **kwargs: Any) -> str:
        sent.append(query)
        return "result"

    monkeypatch.setattr(psycopg.Cursor, "execute", send)
    cursors = {name: SimpleNamespace(connection=SimpleNamespace(info=SimpleNamespace(dbname=name))) for name in "ab"}
    with bench_grants.counted_queries() as counts:
        for name in ("a", "b", "a"):
            assert psycopg.Cursor.execute(cursors[name], f"SELECT '{name}'") == "result"  # type: ignore[call-overload]
    assert counts == {"a": 2, "b": 1} and sent == ["SELECT 'a'", "SELECT 'b'", "SELECT 'a'"]
    assert psycopg.Cursor.execute is send  # restored
