"""Regenerate postgres_platform/model/pg_settings.json from the PostgreSQL the stacks ship.

    python scripts/pg_settings.py          # starts a container of the stack image, reads pg_settings

Stack settings are checked against that table (model/settings.py): names, types, units, ranges, enum
values, and whether a change needs a restart (context `postmaster`). tests/integration/test_server.py fails
when the table is stale for the shipped image.
"""

from __future__ import annotations

import json
import sys

import psycopg

from postgres_platform.cli.errors import command
from postgres_platform.harness.servers import Servers
from postgres_platform.model.load import load_stack_values
from postgres_platform.model.settings import TABLE_FILE
from postgres_platform.model.stackfile import read_stack_values, stack_file

QUERY = "SELECT name, vartype, unit, min_val, max_val, enumvals, context FROM pg_settings ORDER BY name"


def read_table(dsn: str) -> dict[str, object]:
    with psycopg.connect(dsn) as conn:
        version = conn.execute("SHOW server_version").fetchone()
        rows = conn.execute(QUERY).fetchall()
    return {
        "server_version": str(version[0]).split()[0] if version else "",
        "settings": {
            name: {"type": vartype, "unit": unit, "min": min_val, "max": max_val, "enum": enumvals, "context": context}
            for name, vartype, unit, min_val, max_val, enumvals, context in rows
        },
    }


@command
def main(argv: list[str] | None = None) -> int:
    config = load_stack_values(read_stack_values(stack_file("local"))).model_copy(update={"backup": None})
    with Servers(config) as servers:
        table = read_table(servers.superuser_dsn())
    TABLE_FILE.write_text(json.dumps(table, indent=1, sort_keys=True) + "\n")
    print(f"{TABLE_FILE}: PostgreSQL {table['server_version']}", file=sys.stderr)
    return 0
