"""Connection storm: N clients of the prod apps through PgBouncer, then straight at Postgres.

    python scripts/bench_pool.py --clients 500 [--json] [--transactions 5] [--stack prod]

Starts a real PostgreSQL and PgBouncer with the stack's config (postgres_platform/harness/servers.py), spreads N
concurrent clients over the pooled apps, each connecting at once and running short transactions;
then the same storm at Postgres directly, as apps did before PgBouncer. --json prints only
{"clients", "backendBudget", "pooled": {"errors", "maxBackends", "tps"}, "direct": {...}, "versions":
{"postgres", "pgbouncer", "pgbackrest"}}, where backendBudget is the most server connections the config
lets the pooled apps hold and versions is what the servers it ran report.
A benchmark, not a test: tests/integration/test_storm.py runs it small and checks the invariants.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import resource
import time
from collections import Counter
from typing import Any

import psycopg

from postgres_platform.harness.servers import Servers
from postgres_platform.model.config import PlatformConfig
from postgres_platform.model.load import load_stack_values
from postgres_platform.model.stackfile import read_stack_values, stack_file
from postgres_platform.render.pgbouncer import pools

SAMPLE_EVERY = 0.01  # seconds between pg_stat_activity samples


def backend_budget(config: PlatformConfig) -> int:
    return sum(pool.max_server_connections for pool in pools(config))


async def _client(servers: Servers, app: str, pooled: bool, transactions: int) -> tuple[int, str | None]:
    """(committed transactions, the error that ended the client or None) for one client."""
    database = app if pooled else servers.config.apps[app].database
    committed = 0
    try:
        conn = await psycopg.AsyncConnection.connect(
            servers.dsn(app, database, pooled=pooled), autocommit=True, prepare_threshold=None
        )
    except psycopg.Error as exc:
        return 0, _reason(exc)
    try:
        for _ in range(transactions):
            async with conn.transaction():
                await conn.execute("SELECT pg_sleep(0.002)")
            committed += 1
        return committed, None
    except psycopg.Error as exc:
        return committed, _reason(exc)
    finally:
        await conn.close()


def _reason(exc: psycopg.Error) -> str:
    """The server's words without the connection preamble: 'too many connections for role ...'."""
    return str(exc).rsplit("FATAL:", 1)[-1].strip().splitlines()[0]


async def _sample(servers: Servers, roles: list[str], stop: asyncio.Event) -> int:
    peak = 0
    async with await psycopg.AsyncConnection.connect(servers.superuser_dsn(), autocommit=True) as admin:
        while not stop.is_set():
            cursor = await admin.execute("SELECT count(*) FROM pg_stat_activity WHERE usename = ANY(%s)", (roles,))
            row = await cursor.fetchone()
            peak = max(peak, row[0] if row else 0)
            await asyncio.sleep(SAMPLE_EVERY)
    return peak


async def storm(servers: Servers, clients: int, *, pooled: bool, transactions: int) -> dict[str, Any]:
    apps = [pool.app for pool in pools(servers.config)]
    stop = asyncio.Event()
    sampler = asyncio.create_task(_sample(servers, apps, stop))
    await asyncio.sleep(SAMPLE_EVERY)
    started = time.monotonic()
    results = await asyncio.gather(
        *(_client(servers, apps[i % len(apps)], pooled, transactions) for i in range(clients))
    )
    elapsed = time.monotonic() - started
    stop.set()
    committed = sum(r[0] for r in results)
    reasons = Counter(r[1] for r in results if r[1] is not None)
    return {
        "errors": sum(reasons.values()),
        "maxBackends": await sampler,
        "tps": round(committed / elapsed, 1) if elapsed > 0 else 0.0,
        "reasons": dict(reasons.most_common(3)),  # for the text report; not part of --json
    }


async def _settle(servers: Servers, roles: list[str]) -> None:
    """Let pooled server connections close before the direct storm, so it starts from zero."""
    async with await psycopg.AsyncConnection.connect(
        servers.console_dsn(), autocommit=True, prepare_threshold=None
    ) as c:
        for role in roles:
            await c.execute(f"KILL {role}")
            await c.execute(f"RESUME {role}")
    async with await psycopg.AsyncConnection.connect(servers.superuser_dsn(), autocommit=True) as admin:
        for _ in range(500):
            cursor = await admin.execute("SELECT count(*) FROM pg_stat_activity WHERE usename = ANY(%s)", (roles,))
            if await cursor.fetchone() == (0,):
                return
            await asyncio.sleep(0.01)


def run(config: PlatformConfig, clients: int, transactions: int) -> dict[str, Any]:
    soft, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
    resource.setrlimit(resource.RLIMIT_NOFILE, (max(soft, min(hard, clients * 2 + 256)), hard))
    with Servers(config) as servers:
        versions = servers.versions()
        pooled = asyncio.run(storm(servers, clients, pooled=True, transactions=transactions))
        asyncio.run(_settle(servers, [pool.app for pool in pools(config)]))
        direct = asyncio.run(storm(servers, clients, pooled=False, transactions=transactions))
    return {
        "clients": clients,
        "backendBudget": backend_budget(config),
        "pooled": pooled,
        "direct": direct,
        "versions": versions,
    }


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--clients", type=int, required=True)
    parser.add_argument("--transactions", type=int, default=5, help="per client (default 5)")
    parser.add_argument("--stack", default="prod", help="stack whose config the servers get (default prod)")
    parser.add_argument("--json", action="store_true", help="print only the JSON result")
    args = parser.parse_args(argv)
    config = load_stack_values(read_stack_values(stack_file(args.stack)))
    result = run(config, args.clients, args.transactions)
    if args.json:
        for path in ("pooled", "direct"):
            del result[path]["reasons"]
        print(json.dumps(result))
    else:
        print(
            f"{args.clients} clients, {args.transactions} transactions each; backend budget {result['backendBudget']}"
            f"; {', '.join(f'{k} {v}' for k, v in result['versions'].items())}"
        )
        for path in ("pooled", "direct"):
            r = result[path]
            print(f"  {path:7s} errors {r['errors']:5d}  max backends {r['maxBackends']:4d}  {r['tps']:9.1f} tps")
            for reason, count in r["reasons"].items():
                print(f"          {count:5d} x {reason}")
    return 0
