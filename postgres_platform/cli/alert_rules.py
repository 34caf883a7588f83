"""Print a stack's Prometheus alert rules, generated from its config and connection budget.

    python3 scripts/alert_rules.py STACK              # the rules file (YAML) on stdout
    python3 scripts/alert_rules.py --stack-file PATH
    python3 scripts/alert_rules.py STACK --queries    # postgres_exporter's custom queries instead

What each alert means and what to do: docs/operations/alerts.md.
"""

from __future__ import annotations

import argparse

from postgres_platform.cli.errors import COULD_NOT_RUN, command
from postgres_platform.cli.stacks import add_stack_arguments, load_chosen
from postgres_platform.render import monitoring


@command
def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    add_stack_arguments(parser)
    parser.add_argument("--queries", action="store_true", help="print postgres_exporter's queries YAML instead")
    args = parser.parse_args(argv)
    chosen = load_chosen(args)
    if chosen is None:
        return COULD_NOT_RUN
    if args.queries:
        print(monitoring.queries_yaml(chosen.config), end="")
    else:
        print(monitoring.rules_yaml(chosen.config, chosen.name), end="")
    return 0
