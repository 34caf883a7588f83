"""Discover what a running server's clients do, before adopting it (its first step).

    python scripts/discover.py --dsn "$ADMIN_DSN" [--sample-seconds N] [--json]
    python scripts/discover.py --dsn-file admin.dsn ...     # the password out of the process list
    python scripts/discover.py --dsn-file admin.dsn --log-writes [--log-file PATH]   # who writes, from the log

Reports who is connected now (role, database, application_name, client address, state, count); per
table, the rows inserted/updated/deleted during the sample window (pg_stat_user_tables deltas: no
stats reset); the owners per schema; migrations tables; and a suggested `apps:` block for the stack
file (with the databases, their schemas, and the roles other than a superuser seen logged in, as
external roles): an app per database and application_name, its level from what it wrote (DDL seen: migrate),
its connection limit from its peak connections plus a margin. The DSN: a superuser, or a role with
pg_monitor (to see every session's statement) and CONNECT on every database.

Samples can miss a short write between two reads: where a database's counters show writes no client
was seen doing, its clients are suggested `write` and marked REVIEW. With a superuser DSN,
--log-writes reads every write from the server's statement log instead (log_statement = 'mod' for the
window, put back afterwards and on Ctrl-C); the server must log to a file it can read: logging_collector
on, or --log-file naming where its stderr goes.
"""

from __future__ import annotations

import argparse
import json
import signal
from types import FrameType
from typing import Any

from postgres_platform.cli.connection import add_connection_arguments, chosen_dsn
from postgres_platform.cli.errors import COULD_NOT_RUN, CannotRun, command
from postgres_platform.cli.progress import steps
from postgres_platform.ops import discover, statement_log


def render(found: discover.Discovery, apps: dict[str, dict[str, Any]]) -> str:
    lines = [f"connected now ({sum(c['count'] for c in found.connections)}):"]
    lines += [
        f"  {c['count']:3d} {c['role']} in {c['database']} from {c['applicationName'] or '?'} "
        f"at {c['clientAddr'] or 'local socket'} ({c['state']})"
        for c in found.connections
    ]
    lines.append(f"rows written in {found.seconds:g} s:")
    lines += [
        f"  {t['database']}.{t['schema']}.{t['table']}: +{t['inserted']} ~{t['updated']} -{t['deleted']}"
        for t in found.tables
    ] or ["  none"]
    lines.append("owners per schema:")
    lines += [
        f"  {o['database']}.{o['schema']}: schema {o['schemaOwner']}, objects "
        + (", ".join(f"{owner} {n}" for owner, n in sorted(o["objectOwners"].items())) or "-")
        for o in found.owners
    ]
    tools = [c for c in found.clients if discover.is_tool(c)]
    lines.append("people and tools (not suggested as apps):")
    lines += [f"  {c.application_name or '?'} as {c.role} in {c.database}, peak {c.peak}" for c in tools] or ["  none"]
    lines.append(
        "migrations tables: " + (", ".join(f"{m['database']}.{m['table']}" for m in found.migration_tables) or "none")
    )
    evidence = "the statement log" if found.evidence == "log" else "samples of pg_stat_activity"
    lines += [
        "",
        f"suggested from {evidence} (a migration run only at deploy is not seen: set access: migrate for those apps):",
        discover.fragment(found, apps),
    ]
    return "\n".join(lines)


@command
def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    add_connection_arguments(parser, "an admin connection to the server")
    parser.add_argument("--sample-seconds", type=float, default=60.0, help="the window (default 60)")
    parser.add_argument(
        "--log-writes",
        action="store_true",
        help="read who writes from the server's statement log for the window (a superuser DSN; settings put back)",
    )
    parser.add_argument("--log-file", metavar="PATH", help="with --log-writes: the server's log file, on the server")
    parser.add_argument("--json", action="store_true", help="print only the JSON report")
    args = parser.parse_args(argv)
    dsn = chosen_dsn(args)
    if dsn is None:
        return COULD_NOT_RUN
    if args.log_file and not args.log_writes:
        parser.error("--log-file goes with --log-writes")
    previous = signal.signal(signal.SIGTERM, _interrupted)  # a stopped run puts the log settings back too
    try:
        with steps(f"sampling the server for {args.sample_seconds:g} s", total=args.sample_seconds) as advance:
            found = discover.sample(
                dsn, args.sample_seconds, log_writes=args.log_writes, log_file=args.log_file, progress=advance
            )
    except statement_log.LogUnreadable as exc:
        raise CannotRun(str(exc)) from exc
    finally:
        signal.signal(signal.SIGTERM, previous)
    apps = discover.suggest(found)
    if args.json:
        print(json.dumps(report(found, apps)))
    else:
        print(render(found, apps))
    return 0


def _interrupted(_signum: int, _frame: FrameType | None) -> None:
    raise KeyboardInterrupt


def client_json(client: discover.Client) -> dict[str, Any]:
    return {
        "role": client.role,
        "database": client.database,
        "applicationName": client.application_name,
        "superuser": client.superuser,
        "peak": client.peak,
        "kinds": sorted(client.kinds),
    }


def report(found: discover.Discovery, apps: dict[str, dict[str, Any]]) -> dict[str, Any]:
    """The --json report (camelCase keys, lists of objects: docs/command-line.md)."""
    return {
        "sampleSeconds": found.seconds,
        "evidence": found.evidence,
        "connections": found.connections,
        "clients": [client_json(c) for c in found.clients],
        "tables": found.tables,
        "owners": [
            o | {"objectOwners": [{"role": r, "count": n} for r, n in sorted(o["objectOwners"].items())]}
            for o in found.owners
        ],
        "migrationTables": found.migration_tables,
        "suggestedApps": [{"name": name, **app} for name, app in apps.items()],
        "suggestedConfig": discover.fragment(found, apps),
        "tools": [client_json(c) for c in found.clients if discover.is_tool(c)],
    }
