"""The pg_hba.conf lines that admit an adopted server's admin only from existing.adminCidrs.

    python3 scripts/hba_lines.py legacy        # or --stack-file PATH

Put them above every other line that matches the admin or `all` (the first match wins), then
`SELECT pg_reload_conf();`. live_budget.py then checks them through pg_hba_file_rules.
"""

from __future__ import annotations

import argparse

from postgres_platform.cli.errors import COULD_NOT_RUN, CannotRun, command
from postgres_platform.cli.stacks import add_stack_arguments, load_chosen
from postgres_platform.ops.lockdown import hba_lines


@command
def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    add_stack_arguments(parser)
    args = parser.parse_args(argv)
    chosen = load_chosen(args)
    if chosen is None:
        return COULD_NOT_RUN
    lines = hba_lines(chosen.config)
    if not lines:
        raise CannotRun(f"{chosen.name}: no lines: set existing.adminCidrs (target existing, adminSuperuser true)")
    print(lines, end="")
    return 0
