"""The STACK | --stack-file arguments the scripts share, and the stack they name, loaded."""

from __future__ import annotations

import argparse
import sys
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from postgres_platform.model.config import ConfigError, PlatformConfig
from postgres_platform.model.stackfile import load_stack_file, stack_file


def add_stack_arguments(parser: argparse.ArgumentParser) -> None:
    """STACK or --stack-file PATH, shared by the scripts."""
    source = parser.add_mutually_exclusive_group(required=True)
    source.add_argument("stack", nargs="?", help="stack name: reads Pulumi.<stack>.yaml in the repository")
    source.add_argument("--stack-file", type=Path, help="a stack file anywhere")


def chosen_stack(args: argparse.Namespace) -> tuple[str, Path]:
    path: Path = args.stack_file or stack_file(args.stack)
    return args.stack or path.name.removeprefix("Pulumi.").removesuffix(".yaml"), path


@dataclass(frozen=True)
class ChosenStack:
    name: str
    path: Path
    values: dict[str, Any]
    config: PlatformConfig


def load_chosen(args: argparse.Namespace) -> ChosenStack | None:
    """The stack the scripts' STACK | --stack-file arguments name, loaded; None once its problems are on stderr."""
    name, path = chosen_stack(args)
    try:
        values, config = load_stack_file(path)
    except ConfigError as exc:
        print(str(exc), file=sys.stderr)
        return None
    return ChosenStack(name, path, values, config)
