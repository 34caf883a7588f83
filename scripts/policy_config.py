#!/usr/bin/env python3
"""Write the policy pack's config for a stack, from its stack config (the one source of truth).

python scripts/policy_config.py prod > policy-config.prod.json
pulumi preview -s prod --policy-pack policy --policy-pack-config policy-config.prod.json
"""

from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path
from typing import Any

if __package__ in (None, ""):  # run as a script: make `scripts` and `components` importable
    sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from components.config import ConfigError, PlatformConfig, load_stack_values
from components.names import REPLICATION_ROLE
from scripts.offline import add_stack_arguments, chosen_stack, read_stack_values

# Stacks whose data volumes must be protected: there a violation blocks the update.
PROTECTED_STACKS = ("prod",)


def policy_config(stack: str, config: PlatformConfig) -> dict[str, Any]:
    return {
        "connection-budget": {
            "adminHeadroom": config.postgres.admin_headroom,
            "externalRoles": {name: spec.connection_limit for name, spec in config.external_roles.items()},
        },
        "bounded-roles": {"replicationRoles": [REPLICATION_ROLE] if config.hetzner and config.hetzner.replicas else []},
        "protected-data": {"enforcementLevel": "mandatory" if stack in PROTECTED_STACKS else "advisory"},
    }


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    add_stack_arguments(parser)
    stack, path = chosen_stack(parser.parse_args(argv))
    try:
        config = load_stack_values(read_stack_values(path))
    except (ConfigError, FileNotFoundError) as exc:
        print(str(exc), file=sys.stderr)
        return 1
    print(json.dumps(policy_config(stack, config), indent=2))
    return 0


if __name__ == "__main__":
    sys.exit(main())
