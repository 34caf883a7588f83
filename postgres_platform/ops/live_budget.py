"""The live budget: who holds a running server's slots now, against what the stack declares.

`snapshot()` reads the server (client backends only, its own connection left out); `assess()` is
pure: it compares a snapshot with the config's budget and names every drift, each as {problem, fix}.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import psycopg

from postgres_platform.model import budget
from postgres_platform.model.config import PlatformConfig


@dataclass(frozen=True)
class Role:
    name: str
    superuser: bool
    limit: int  # rolconnlimit (-1: none)
    connections: int  # client backends now


@dataclass(frozen=True)
class SuperuserSession:
    database: str
    application_name: str
    client_addr: str | None
    count: int


@dataclass(frozen=True)
class Snapshot:
    max_connections: int
    superuser_reserved: int
    reserved: int  # reserved_connections (PostgreSQL 16; 0 before)
    roles: tuple[Role, ...]
    superuser_sessions: tuple[SuperuserSession, ...]


ROLES = """
SELECT r.rolname, r.rolsuper, r.rolconnlimit,
  count(a.pid) FILTER (WHERE a.backend_type = 'client backend' AND a.pid <> pg_catalog.pg_backend_pid())
FROM pg_catalog.pg_roles r LEFT JOIN pg_catalog.pg_stat_activity a ON a.usesysid = r.oid
WHERE r.rolcanlogin OR a.pid IS NOT NULL
GROUP BY 1, 2, 3 ORDER BY 1
"""
SUPERUSER_SESSIONS = """
SELECT coalesce(a.datname, ''), a.application_name, host(a.client_addr), count(*)
FROM pg_catalog.pg_stat_activity a JOIN pg_catalog.pg_roles r ON r.oid = a.usesysid
WHERE r.rolsuper AND a.backend_type = 'client backend' AND a.pid <> pg_catalog.pg_backend_pid()
GROUP BY 1, 2, 3 ORDER BY 4 DESC, 1, 2
"""


def snapshot(dsn: str) -> Snapshot:
    with psycopg.connect(dsn, autocommit=True) as conn:

        def setting(name: str) -> int:
            row = conn.execute("SELECT setting FROM pg_catalog.pg_settings WHERE name = %s", (name,)).fetchone()
            return int(row[0]) if row else 0

        roles = tuple(Role(str(n), bool(s), int(lim), int(c)) for n, s, lim, c in conn.execute(ROLES).fetchall())
        sessions = tuple(
            SuperuserSession(str(d), str(app), None if addr is None else str(addr), int(c))
            for d, app, addr, c in conn.execute(SUPERUSER_SESSIONS).fetchall()
        )
        return Snapshot(
            setting("max_connections"),
            setting("superuser_reserved_connections"),
            setting("reserved_connections"),
            roles,
            sessions,
        )


def problem(text: str, fix: str) -> dict[str, str]:
    return {"problem": text, "fix": fix}


WATCH = "find what holds them: `pgplat live STACK --dsn-file ADMIN --watch 5`, then pg_stat_activity of the role"


def assess(config: PlatformConfig, live: Snapshot) -> dict[str, Any]:
    """The report of scripts/live_budget.py --json; `problems` names each drift and what to do about it."""
    declared = {e.role: e for e in budget.entries(config) if e.role != budget.PGBACKREST}  # that one is no role
    on_server = {r.name: r for r in live.roles}
    usable = live.max_connections - live.superuser_reserved - live.reserved
    connected = sum(r.connections for r in live.roles)
    problems: list[dict[str, str]] = []
    if live.max_connections != config.postgres.max_connections:
        problems.append(
            problem(
                f"max_connections is {live.max_connections} on the server, "
                f"{config.postgres.max_connections} in the config",
                f"make them agree: postgres.maxConnections: {live.max_connections} in the stack, or "
                f"`pulumi up` (a restart) to give the server {config.postgres.max_connections}",
            )
        )
    if connected > usable:
        problems.append(
            problem(
                f"{connected} client connections, more than the {usable} usable slots",
                f"{WATCH}; then lower the limits that let it happen or raise postgres.maxConnections",
            )
        )
    rows = []
    for name in sorted(set(declared) | set(on_server)):
        entry, role = declared.get(name), on_server.get(name)
        if role is None:
            problems.append(
                problem(
                    f"role {name} is declared (limit {entry.limit if entry else '?'}) but missing on the server",
                    "`pulumi up` creates it (or, if nothing connects as it any more, remove it from the stack)",
                )
            )
            continue
        kind = "superuser" if role.superuser else (entry.kind if entry else "undeclared")
        if entry is not None and role.limit != entry.limit:
            problems.append(
                problem(
                    f"role {name} has CONNECTION LIMIT {role.limit} on the server, {entry.limit} declared",
                    f"`pulumi up` sets the declared {entry.limit} back; if {role.limit} is right, set "
                    f"{entry.key or 'its limit'} to {role.limit} in the stack",
                )
            )
        if entry is None and not role.superuser and role.connections:
            problems.append(
                problem(
                    f"role {name} is not declared but holds {role.connections} connection(s)",
                    f"declare it under externalRoles ({name}: connectionLimit: {max(role.connections, role.limit)}"
                    " or more) or move its clients to a declared app's login",
                )
            )
        if role.limit >= 0 and role.connections >= role.limit and role.connections:
            where = (
                f"raise {entry.key} in the stack"
                if entry and entry.key
                else f"declare {name} under externalRoles with a higher connectionLimit"
            )
            problems.append(
                problem(
                    f"role {name} is at its limit: {role.connections} of {role.limit}",
                    f"{where}, or {WATCH} (a leak or a slow query)",
                )
            )
        if entry is None and not role.connections and not role.superuser:
            continue  # a login role nobody uses and nobody declared: not a slot holder
        rows.append(
            {
                "role": name,
                "kind": kind,
                "declared": entry.limit if entry else None,
                "serverLimit": role.limit,
                "connections": role.connections,
            }
        )
    return {
        "maxConnections": live.max_connections,
        "usable": usable,
        "connected": connected,
        "roles": rows,
        "superuserSessions": [
            {
                "database": s.database,
                "applicationName": s.application_name,
                "clientAddr": s.client_addr,
                "count": s.count,
            }
            for s in live.superuser_sessions
        ],
        "problems": problems,
    }


def pgbouncer_pools(console_dsn: str) -> list[dict[str, Any]]:
    """PgBouncer's pools (SHOW POOLS on its admin console, simple queries only): clients active and
    waiting, and how long the oldest has waited."""
    with psycopg.connect(console_dsn, autocommit=True, prepare_threshold=None) as console:
        cursor = console.execute("SHOW POOLS")
        names = [column.name for column in cursor.description or ()]
        rows = [dict(zip(names, row, strict=True)) for row in cursor.fetchall()]
    return [
        {
            "database": row["database"],
            "user": row["user"],
            "active": int(row["cl_active"]),
            "waiting": int(row["cl_waiting"]),
            "maxWaitSeconds": int(row["maxwait"]) + int(row.get("maxwait_us", 0)) / 1e6,
        }
        for row in rows
        if row["database"] != "pgbouncer"  # the console's own
    ]


def waiting_problems(pools: list[dict[str, Any]]) -> list[dict[str, str]]:
    """A problem per pool with clients waiting: every server connection it may open is busy."""
    return [
        problem(
            f"{p['waiting']} client(s) of {p['user']} wait in PgBouncer's {p['database']} pool "
            f"(the oldest {p['maxWaitSeconds']:.1f} s): its pool is full",
            f"find the long transactions of {p['user']} holding its server connections (pg_stat_activity), "
            f"or raise apps.{p['database']}.connectionLimit (the pool is at most that, less directConnections, "
            "and pgbouncer.defaultPoolSize)",
        )
        for p in pools
        if p["waiting"]
    ]
