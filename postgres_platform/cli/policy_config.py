"""Write the policy pack's config for a stack, from its stack config (the one source of truth).

python scripts/policy_config.py prod > policy-config.prod.json
pulumi preview -s prod --policy-pack policy --policy-pack-config policy-config.prod.json
"""

from __future__ import annotations

import argparse
import json

from postgres_platform.cli.errors import COULD_NOT_RUN, command
from postgres_platform.cli.stacks import add_stack_arguments, load_chosen
from postgres_platform.offline.policy_config import policy_config


@command
def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    add_stack_arguments(parser)
    chosen = load_chosen(parser.parse_args(argv))
    if chosen is None:
        return COULD_NOT_RUN
    config = chosen.config
    print(json.dumps(policy_config(config), indent=2))
    return 0
