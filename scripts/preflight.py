#!/usr/bin/env python3
"""Preflight: what a stack would declare and whether its connection budget fits, with no cloud or CLI.

    python scripts/preflight.py prod
    python scripts/preflight.py --stack-file path/to/Pulumi.x.yaml --json

Loads the stack config (a bad one: its one-line errors on stderr, exit 1), runs the real program
in-process under Pulumi mocks, and prints the resources it declares and the budget per server.
"""

from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path
from typing import Any

if __package__ in (None, ""):  # run as a script: make `scripts` and `components` importable
    sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from components import budget
from components.config import ConfigError, PlatformConfig, load_stack_values
from scripts.offline import ProgramRun, add_stack_arguments, chosen_stack, read_stack_values, run_program


def report(stack: str, config: PlatformConfig, run: ProgramRun) -> dict[str, Any]:
    return {
        "stack": stack,
        "servers": [server.as_dict() for server in budget.compute(config)],
        "resources": run.counts(),
    }


def render_text(stack: str, config: PlatformConfig, run: ProgramRun) -> str:
    counts = run.counts()
    lines = [f"stack {stack} (target {config.target}): {sum(counts.values())} resources declared"]
    lines += [f"  {count:4d}  {token}" for token, count in counts.items()]
    if config.target == "hetzner":
        lines.append(
            "  note: Hetzner hosts are not declared by this version; roles, grants and DSNs are planned "
            "against the primary's private IP and `pulumi up` refuses this target"
        )
    lines.append("")
    lines += [budget.render_table(server) for server in budget.compute(config)]
    return "\n".join(lines)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    add_stack_arguments(parser)
    parser.add_argument("--json", action="store_true", help="print only the JSON report on stdout")
    args = parser.parse_args(argv)

    stack, path = chosen_stack(args)
    if not path.is_file():
        print(f"{path}: no such stack file", file=sys.stderr)
        return 1
    values = read_stack_values(path)
    try:
        config = load_stack_values(values)
    except ConfigError as exc:
        print(str(exc), file=sys.stderr)
        return 1
    run = run_program(stack, values, preview=True)
    if args.json:
        print(json.dumps(report(stack, config, run), indent=2))
    else:
        print(render_text(stack, config, run))
    return 0


if __name__ == "__main__":
    sys.exit(main())
