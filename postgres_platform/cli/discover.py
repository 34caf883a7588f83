"""Discover what a running server's clients do, before adopting it (its first step).

    python scripts/discover.py --dsn "$ADMIN_DSN" [--sample-seconds N] [--json]
    python scripts/discover.py --dsn-file admin.dsn ...     # the password out of the process list

Reports who is connected now (role, database, application_name, client address, state, count); per
table, the rows inserted/updated/deleted during the sample window (pg_stat_user_tables deltas: no
stats reset); the owners per schema; migrations tables; and a suggested `apps:` block for the stack
file (with the databases, their schemas, and the roles other than a superuser seen logged in, as
external roles): an app per database and application_name, its level from what it wrote (DDL seen: migrate),
its connection limit from its peak connections plus a margin. The DSN: a superuser, or a role with
pg_monitor (to see every session's statement) and CONNECT on every database.
"""

from __future__ import annotations

import argparse
import dataclasses
import json

from postgres_platform.cli.connection import add_connection_arguments, chosen_dsn
from postgres_platform.cli.errors import COULD_NOT_RUN, command
from postgres_platform.ops import discover


def render(found: discover.Discovery, apps: dict[str, dict[str, object]]) -> str:
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
        f"  {o['database']}.{o['schema']}: schema {o['schemaOwner']}, objects {o['objectOwners'] or '-'}"
        for o in found.owners
    ]
    lines.append(
        "migrations tables: " + (", ".join(f"{m['database']}.{m['table']}" for m in found.migration_tables) or "none")
    )
    lines += [
        "",
        "suggested (a migration run only at deploy is not seen: set access: migrate for those apps):",
        discover.fragment(found, apps),
    ]
    return "\n".join(lines)


@command
def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    add_connection_arguments(parser, "an admin connection to the server")
    parser.add_argument("--sample-seconds", type=float, default=60.0, help="the window (default 60)")
    parser.add_argument("--json", action="store_true", help="print only the JSON report")
    args = parser.parse_args(argv)
    dsn = chosen_dsn(args)
    if dsn is None:
        return COULD_NOT_RUN
    found = discover.sample(dsn, args.sample_seconds)
    apps = discover.suggest(found)
    if args.json:
        report = {
            "sampleSeconds": found.seconds,
            "connections": found.connections,
            "clients": [dataclasses.asdict(c) | {"kinds": sorted(c.kinds)} for c in found.clients],
            "tables": found.tables,
            "owners": found.owners,
            "migrationTables": found.migration_tables,
            "suggestedApps": apps,
            "suggestedConfig": discover.fragment(found, apps),
            "tools": [dataclasses.asdict(c) | {"kinds": sorted(c.kinds)} for c in found.clients if discover.is_tool(c)],
        }
        print(json.dumps(report))
    else:
        print(render(found, apps))
    return 0
