"""Write the policy pack's config for a stack, from its stack config (the one source of truth).

python scripts/policy_config.py prod > policy-config.prod.json
pulumi preview -s prod --policy-pack policy --policy-pack-config policy-config.prod.json
"""

from __future__ import annotations

import argparse
import json
import sys

from postgres_platform.model.config import ConfigError
from postgres_platform.offline.policy_config import policy_config
from postgres_platform.stackfile import add_stack_arguments, chosen_stack, load_stack_file


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    add_stack_arguments(parser)
    _, path = chosen_stack(parser.parse_args(argv))
    try:
        _, config = load_stack_file(path)
    except ConfigError as exc:
        print(str(exc), file=sys.stderr)
        return 1
    print(json.dumps(policy_config(config), indent=2))
    return 0
