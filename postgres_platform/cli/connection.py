"""The admin connection of the tools that talk to a live server: `--dsn` or `--dsn-file`.

The password belongs in PGPASSWORD, ~/.pgpass (or a service file) or the file `--dsn-file` names, where
libpq finds it: a password inside `--dsn` is in the process list (`ps`, /proc/*/cmdline) for as long as
the tool runs (`--watch`: hours), so the tools say so on stderr.
"""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

import psycopg

WARNING = (
    "warning: --dsn holds a password, which any user of this machine sees in the process list: "
    "use PGPASSWORD, ~/.pgpass or --dsn-file"
)


def add_connection_arguments(
    parser: argparse.ArgumentParser, what: str, name: str = "dsn", required: bool = True
) -> None:
    """--<name> DSN | --<name>-file PATH (e.g. --pgbouncer-dsn for PgBouncer's admin console)."""
    group = parser.add_mutually_exclusive_group(required=required)
    group.add_argument(f"--{name}", help=f"{what} (libpq keywords or a URI; the password from PGPASSWORD or ~/.pgpass)")
    group.add_argument(f"--{name}-file", type=Path, help="a file holding that DSN, password included (mode 0600)")


def chosen_dsn(args: argparse.Namespace, name: str = "dsn") -> str | None:
    """The DSN, or None after one line on stderr (an unreadable file, a DSN that does not parse)."""
    attribute = name.replace("-", "_")
    dsn_file: Path | None = getattr(args, f"{attribute}_file")
    if dsn_file is not None:
        try:
            dsn: str = dsn_file.read_text().strip()
        except (OSError, UnicodeDecodeError) as exc:
            print(f"--{name}-file: cannot read {dsn_file}: {getattr(exc, 'strerror', None) or exc}", file=sys.stderr)
            return None
        source = f"--{name}-file {dsn_file}"
    else:
        dsn, source = str(getattr(args, attribute)), f"--{name}"
    try:
        parts = psycopg.conninfo.conninfo_to_dict(dsn)
    except psycopg.ProgrammingError as exc:
        print(f"{source}: not a connection string: {str(exc).splitlines()[0]}", file=sys.stderr)
        return None
    if dsn_file is None and parts.get("password"):
        print(WARNING.replace("--dsn ", f"--{name} "), file=sys.stderr)
    return dsn
