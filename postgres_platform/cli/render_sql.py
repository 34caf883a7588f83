"""Print the access plan of a stack as an idempotent psql script, for a superuser to run.

    python scripts/render_sql.py prod | psql -v ON_ERROR_STOP=1 -v webhook_app_password=... -f -

The same plan the Pulumi resources are built from: databases owned by `<db>_owner`, schemas, roles
with their limits and timeouts, grants, default privileges, revokes, the PgBouncer auth role and its
hardened lookup function. Passwords are psql variables named `<role>_password`, never in the script.
Run it again and it converges to the same state. For operators who review SQL before it runs, or
whose server Pulumi cannot reach.
"""

from __future__ import annotations

import argparse
import sys

from postgres_platform.model import access
from postgres_platform.model.config import ConfigError
from postgres_platform.model.load import load_stack_values
from postgres_platform.render import sql
from postgres_platform.stackfile import add_stack_arguments, chosen_stack, read_stack_values


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    add_stack_arguments(parser)
    _, path = chosen_stack(parser.parse_args(argv))
    if not path.is_file():
        print(f"{path}: no such stack file", file=sys.stderr)
        return 1
    try:
        config = load_stack_values(read_stack_values(path))
    except ConfigError as exc:
        print(str(exc), file=sys.stderr)
        return 1
    sys.stdout.write(sql.render_script(access.plan(config)))
    return 0
