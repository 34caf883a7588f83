"""Connection storm: N clients of the prod apps through PgBouncer, then straight at Postgres.

    python scripts/bench_pool.py --clients 500 [--json] [--transactions 5] [--stack prod]
    python scripts/bench_pool.py --pgbench [--clients 32] [--seconds 30] [--protocol simple] [--json]

Starts a real PostgreSQL and PgBouncer with the stack's config (postgres_platform/harness/servers.py), spreads N
concurrent clients over the pooled apps, each connecting at once and running short transactions;
then the same storm at Postgres directly, as apps did before PgBouncer. --json prints only
{"clients", "backendBudget", "pooled": {"errors", "maxBackends", "tps"}, "direct": {...}, "versions":
{"postgres", "pgbouncer", "pgbackrest"}}, where backendBudget is the most server connections the config
lets the pooled apps hold and versions is what the servers it ran report.

--pgbench: select-only pgbench (`pgbench -S`, run inside the Postgres container) straight at Postgres,
then through PgBouncer, with a server connection per client both ways: the stack's servers and images,
with one read app whose pool holds as many connections as there are clients. --json prints only
{"mode": "pgbench", "clients", "seconds", "direct": {"tps"}, "pooled": {"tps"}, "ratio", "versions"},
where ratio is pooled tps over direct tps.
A benchmark, not a test: tests/integration/test_storm.py and test_pgbench.py run it small.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import re
import resource
import time
from collections import Counter
from typing import Any

import psycopg

from postgres_platform.cli.errors import command
from postgres_platform.harness.servers import Servers
from postgres_platform.model.config import PlatformConfig
from postgres_platform.model.load import load_stack_values
from postgres_platform.model.names import NAMESPACE, SUPERUSER
from postgres_platform.model.stackfile import read_stack_values, stack_file
from postgres_platform.render.pgbouncer import pools

SAMPLE_EVERY = 0.01  # seconds between pg_stat_activity samples
PGBENCH_DATABASE, PGBENCH_APP = "pgbench_db", "pgbench_app"
PGBENCH_SCALE = 10  # 1,000,000 accounts: in memory, as a hot working set is


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


def pgbench_config(values: dict[str, Any], clients: int) -> PlatformConfig:
    """The stack's servers and images with one read app in place of its apps and roles, its pool as large
    as `clients` (no reserve) and its CONNECTION LIMIT too: pooled and direct runs hold as many backends."""
    replaced = ("apps", "databases", "externalRoles")
    kept = {key: value for key, value in values.items() if key.removeprefix(f"{NAMESPACE}:") not in replaced}
    pgbouncer = json.loads(values[f"{NAMESPACE}:pgbouncer"]) | {"defaultPoolSize": clients, "reservePoolSize": 0}
    app = {"database": PGBENCH_DATABASE, "access": "read", "connectionLimit": clients}
    bench = {
        "pgbouncer": pgbouncer,
        "databases": {PGBENCH_DATABASE: {"schemas": ["public"]}},
        "apps": {PGBENCH_APP: app},
    }
    return load_stack_values(kept | {f"{NAMESPACE}:{key}": json.dumps(value) for key, value in bench.items()})


def _pgbench(servers: Servers, argv: list[str], user: str, *, pooled: bool, seconds: float) -> str:
    database = PGBENCH_APP if pooled else PGBENCH_DATABASE
    done = servers.pgbench(argv, user, database, pooled=pooled, timeout=seconds + 120)
    if done.returncode != 0:
        raise RuntimeError(f"pgbench failed ({done.returncode}): {done.stderr.strip()}")
    return done.stdout


def _tps(report: str) -> float:
    """pgbench's `tps = 1234.5 (without initial connection time)`."""
    match = re.search(r"^tps = ([0-9.]+)", report, re.MULTILINE)
    if match is None:
        raise RuntimeError(f"no tps in pgbench's report: {report}")
    return round(float(match.group(1)), 1)


def run_pgbench(config: PlatformConfig, clients: int, seconds: int, protocol: str) -> dict[str, Any]:
    """Direct first, then pooled (its pool's connections take the role's every slot)."""
    select_only = ["-S", "-n", "-c", str(clients), "-j", str(min(2, clients)), "-T", str(seconds), "-M", protocol]
    with Servers(config) as servers:
        versions = servers.versions()
        _pgbench(servers, ["-i", "-q", "-s", str(PGBENCH_SCALE)], SUPERUSER, pooled=False, seconds=300)
        servers.apply_plan()  # the read group's grants reach the tables pgbench created
        direct = _tps(_pgbench(servers, select_only, PGBENCH_APP, pooled=False, seconds=seconds))
        asyncio.run(_settle(servers, [PGBENCH_APP]))
        pooled = _tps(_pgbench(servers, select_only, PGBENCH_APP, pooled=True, seconds=seconds))
    return {
        "mode": "pgbench",
        "clients": clients,
        "seconds": float(seconds),
        "direct": {"tps": direct},
        "pooled": {"tps": pooled},
        "ratio": round(pooled / direct, 3) if direct > 0 else 0.0,
        "versions": versions,
    }


def _print_pgbench(result: dict[str, Any], protocol: str) -> None:
    print(
        f"pgbench -S, {result['clients']} clients, {result['seconds']:g} s, {protocol} protocol"
        f"; {', '.join(f'{k} {v}' for k, v in result['versions'].items())}"
    )
    for path in ("direct", "pooled"):
        print(f"  {path:7s} {result[path]['tps']:10.1f} tps")
    print(f"  ratio   {result['ratio']:10.3f} (pooled / direct)")


def _print_storm(result: dict[str, Any], transactions: int) -> None:
    print(
        f"{result['clients']} clients, {transactions} transactions each; backend budget {result['backendBudget']}"
        f"; {', '.join(f'{k} {v}' for k, v in result['versions'].items())}"
    )
    for path in ("pooled", "direct"):
        r = result[path]
        print(f"  {path:7s} errors {r['errors']:5d}  max backends {r['maxBackends']:4d}  {r['tps']:9.1f} tps")
        for reason, count in r["reasons"].items():
            print(f"          {count:5d} x {reason}")


@command
def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--clients", type=int, help="required for the storm; --pgbench: default 32")
    parser.add_argument("--transactions", type=int, default=5, help="per client (default 5)")
    parser.add_argument("--stack", default="prod", help="stack whose config the servers get (default prod)")
    parser.add_argument("--json", action="store_true", help="print only the JSON result")
    parser.add_argument("--pgbench", action="store_true", help="select-only pgbench, direct and pooled")
    parser.add_argument("--seconds", type=int, default=30, help="--pgbench: per path (default 30)")
    parser.add_argument("--protocol", choices=("simple", "extended"), default="simple", help="--pgbench: -M")
    args = parser.parse_args(argv)
    values = read_stack_values(stack_file(args.stack))
    if args.pgbench:
        clients = args.clients or 32
        result = run_pgbench(pgbench_config(values, clients), clients, args.seconds, args.protocol)
        if args.json:
            print(json.dumps(result))
        else:
            _print_pgbench(result, args.protocol)
        return 0
    if args.clients is None:
        parser.error("--clients is required (but with --pgbench)")
    result = run(load_stack_values(values), args.clients, args.transactions)
    if args.json:
        for path in ("pooled", "direct"):
            del result[path]["reasons"]
        print(json.dumps(result))
    else:
        _print_storm(result, args.transactions)
    return 0
