"""Stack files as the Pulumi CLI reads them, and the STACK | --stack-file arguments the scripts share."""

from __future__ import annotations

import argparse
import json
from pathlib import Path
from typing import Any

import yaml

from postgres_platform.model.names import NAMESPACE

ROOT = Path(__file__).resolve().parent.parent  # the Pulumi project: Pulumi.yaml, __main__.py, stack files


def stack_file(stack: str) -> Path:
    return ROOT / f"Pulumi.{stack}.yaml"


def add_stack_arguments(parser: argparse.ArgumentParser) -> None:
    """STACK or --stack-file PATH, shared by the scripts."""
    source = parser.add_mutually_exclusive_group(required=True)
    source.add_argument("stack", nargs="?", help="stack name: reads Pulumi.<stack>.yaml in the repository")
    source.add_argument("--stack-file", type=Path, help="a stack file anywhere")


def chosen_stack(args: argparse.Namespace) -> tuple[str, Path]:
    path: Path = args.stack_file or stack_file(args.stack)
    return args.stack or path.name.removeprefix("Pulumi.").removesuffix(".yaml"), path


def read_stack_values(path: Path) -> dict[str, Any]:
    """The stack file's `postgres-platform:*` values, as the Pulumi CLI would pass them."""
    document = yaml.safe_load(path.read_text()) or {}
    values: dict[str, Any] = {}
    for key, value in (document.get("config") or {}).items():
        if key.startswith(f"{NAMESPACE}:"):
            values[key] = value if isinstance(value, str) else json.dumps(value)
    return values
