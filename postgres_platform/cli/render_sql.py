"""Print the access plan of a stack as an idempotent psql script, for a superuser to run.

    python scripts/render_sql.py prod > plan.sql
    python scripts/render_sql.py prod --psql-variables < passwords.txt > passwords.psql   # ROLE PASSWORD lines
    psql -v ON_ERROR_STOP=1 -f passwords.psql -f plan.sql

The same plan the Pulumi resources are built from: databases owned by `<db>_owner`, schemas, roles
with their limits and timeouts, grants, default privileges, revokes, the PgBouncer auth role and its
hardened lookup function. Passwords are psql variables named `<role>_password`, never in the script.
Run it again and it converges to the same state. For operators who review SQL before it runs, or
whose server Pulumi cannot reach. --psql-variables turns `ROLE PASSWORD` lines (standard input) into
`\\set <role>_password '<SCRAM verifier>'` lines: no password on a command line or in the server's log.
"""

from __future__ import annotations

import argparse
import sys

from postgres_platform.cli.errors import COULD_NOT_RUN, command
from postgres_platform.cli.stacks import add_stack_arguments, load_chosen
from postgres_platform.model import access
from postgres_platform.render import sql
from postgres_platform.render.scram import stable_verifier


@command
def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    add_stack_arguments(parser)
    parser.add_argument(
        "--psql-variables", action="store_true", help="`ROLE PASSWORD` lines on stdin -> psql \\set lines of verifiers"
    )
    args = parser.parse_args(argv)
    chosen = load_chosen(args)
    if chosen is None:
        return COULD_NOT_RUN
    config = chosen.config
    plan = access.plan(config)
    if not args.psql_variables:
        sys.stdout.write(sql.render_script(plan))
        return 0
    logins = {role.name for role in plan.logins}
    for number, line in enumerate(sys.stdin, start=1):
        role, _, password = line.rstrip("\n").partition(" ")
        if role not in logins or not password:
            print(
                f"stdin line {number}: must be `ROLE PASSWORD` for a login role of the plan, got role {role!r}",
                file=sys.stderr,
            )
            return COULD_NOT_RUN
        print(f"\\set {sql.password_variable(role)} {sql.literal(stable_verifier(role, password))}")
    return 0
