"""Grant check benchmark: `check_grants` on a real server of N apps and T tables.

    python scripts/bench_grants.py [--apps 20] [--tables 3000] [--runs 5] [--json]

Starts a real PostgreSQL and PgBouncer (postgres_platform/harness/servers.py) with a generated stack of N
apps, ten per database (cli/bench_scale.py's), applies its plan, creates T tables (each with a bigserial,
so as many sequences) spread over the databases' schemas as their owners, then runs the grant check
(ops.grants.check_grants, as `live_budget.py --check-grants` does) several times. It reports the median
seconds, the most queries it sent to any one database (counted client-side: every psycopg
Cursor.execute, which Connection.execute goes through) and the failures it found (0: a clean apply).
Also discovery's scans on the same server (ops.discover: the table counters, the owners per schema and
the migrations tables of every database; its sampling window is time it waits, not measured here).
--json prints only {"tables", "apps", "databases", "seconds", "queriesPerDatabase", "failures",
"discovery": {"seconds", "queriesPerDatabase"}, "versions": {"postgres", "pgbouncer", "pgbackrest"}}
(what the servers it ran report).
A benchmark, not a test: tests/integration/test_grant_oracle.py checks what the check reports.
"""

from __future__ import annotations

import argparse
import contextlib
import json
import statistics
import time
from collections import Counter
from collections.abc import Iterator
from typing import Any

import psycopg

from postgres_platform.cli.bench_scale import generated_stack
from postgres_platform.cli.errors import command
from postgres_platform.harness.servers import Servers
from postgres_platform.model.config import PlatformConfig
from postgres_platform.model.load import parse
from postgres_platform.model.names import owner_role
from postgres_platform.ops import discover
from postgres_platform.ops.grants import check_grants
from postgres_platform.render import sql


def generated_config(apps: int) -> PlatformConfig:
    """bench_scale's generated stack of `apps` apps, as the program reads it."""
    values = generated_stack(apps)["config"]
    return parse({key.removeprefix("postgres-platform:"): value for key, value in values.items()})


def table_scripts(config: PlatformConfig, tables: int) -> dict[str, str]:
    """Per database, the psql script that creates its share of `tables` (round robin over every
    database's schemas) as its owner role, so the plan's default privileges give them their grants.
    One statement per table (psql commits each): no transaction holds thousands of locks."""
    places = [(database, schema) for database, spec in config.databases.items() for schema in spec.schemas]
    statements: dict[str, list[str]] = {
        database: [f"SET ROLE {sql.ident(owner_role(database))};"] for database in config.databases
    }
    for i in range(tables):
        database, schema = places[i % len(places)]
        table = f"{sql.ident(schema)}.{sql.ident(f't{i:05d}')}"
        statements[database].append(f"CREATE TABLE IF NOT EXISTS {table} (id bigserial PRIMARY KEY, note text);")
    return {database: "\n".join(lines) + "\n" for database, lines in statements.items() if len(lines) > 1}


@contextlib.contextmanager
def counted_queries() -> Iterator[Counter[str]]:
    """Within: the queries psycopg sends, by the database of their connection."""
    counts: Counter[str] = Counter()
    execute = psycopg.Cursor.execute

    def counting(self: psycopg.Cursor[Any], *args: Any, **kwargs: Any) -> Any:
        counts[self.connection.info.dbname] += 1
        return execute(self, *args, **kwargs)

    setattr(psycopg.Cursor, "execute", counting)  # noqa: B010 (mypy: a method is not assignable)
    try:
        yield counts
    finally:
        setattr(psycopg.Cursor, "execute", execute)  # noqa: B010


def measure(config: PlatformConfig, dsn: str, runs: int) -> dict[str, Any]:
    """Median seconds of `runs` checks; the most queries one run sent to one database; its failures."""
    seconds, per_database, failures = [], 0, 0
    for _ in range(runs):
        with counted_queries() as counts:
            started = time.perf_counter()
            found = check_grants(config, dsn)
            seconds.append(time.perf_counter() - started)
        per_database, failures = max(counts.values()), len(found)
    return {"seconds": round(statistics.median(seconds), 3), "queriesPerDatabase": per_database, "failures": failures}


def measure_discovery(dsn: str, runs: int) -> dict[str, Any]:
    """Median seconds of discovery's scans (counters, owners, migrations tables) over every database."""
    seconds, per_database = [], 0
    for _ in range(runs):
        with counted_queries() as counts:
            started = time.perf_counter()
            with psycopg.connect(dsn, autocommit=True) as conn:
                databases = discover.database_names(conn)
            discover.table_stats(dsn, databases)
            discover.owners_and_migrations(dsn, databases)
            seconds.append(time.perf_counter() - started)
        per_database = max(n for db, n in counts.items() if db in databases)
    return {"seconds": round(statistics.median(seconds), 3), "queriesPerDatabase": per_database}


def run(apps: int, tables: int, runs: int) -> dict[str, Any]:
    config = generated_config(apps)
    with Servers(config) as servers:
        for database, script in table_scripts(config, tables).items():
            servers.psql(script, database=database)
        versions = servers.versions()
        measured = measure(config, servers.superuser_dsn(), runs)
        measured["discovery"] = measure_discovery(servers.superuser_dsn(), runs)
    return {"tables": tables, "apps": apps, "databases": len(config.databases), **measured, "versions": versions}


@command
def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--apps", type=int, default=20, help="apps, ten per database (default 20)")
    parser.add_argument("--tables", type=int, default=3000, help="tables over all databases (default 3000)")
    parser.add_argument("--runs", type=int, default=5, help="checks to take the median of (default 5)")
    parser.add_argument("--json", action="store_true", help="print only the JSON result")
    args = parser.parse_args(argv)
    result = run(args.apps, args.tables, args.runs)
    if args.json:
        print(json.dumps(result))
    else:
        print(
            f"{result['tables']} tables, {result['apps']} apps, {result['databases']} databases; "
            f"{', '.join(f'{k} {v}' for k, v in result['versions'].items())}\n"
            f"  check_grants {result['seconds']:.3f} s (median of {args.runs}), "
            f"{result['queriesPerDatabase']} queries per database, {result['failures']} failures\n"
            f"  discovery's scans {result['discovery']['seconds']:.3f} s, "
            f"{result['discovery']['queriesPerDatabase']} queries per database"
        )
    return 0
