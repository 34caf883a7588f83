"""Stack files as the Pulumi CLI reads them, and the STACK | --stack-file arguments the scripts share."""

from __future__ import annotations

import argparse
import json
import sys
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import yaml

from postgres_platform.model.config import ConfigError, PlatformConfig
from postgres_platform.model.load import load_stack_values

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


class _StrictLoader(yaml.SafeLoader):
    """YAML that refuses a key given twice (PyYAML keeps the last one without a word)."""


def _mapping_without_duplicates(loader: _StrictLoader, node: yaml.MappingNode, deep: bool = False) -> Any:
    seen: set[Any] = set()
    for key_node, _ in node.value:
        key = loader.construct_object(key_node, deep=deep)
        if key in seen:
            raise yaml.constructor.ConstructorError(None, None, f"key {key!r} is given twice", key_node.start_mark)
        seen.add(key)
    return loader.construct_mapping(node, deep=deep)


_StrictLoader.add_constructor(yaml.resolver.BaseResolver.DEFAULT_MAPPING_TAG, _mapping_without_duplicates)


def read_stack_values(path: Path) -> dict[str, Any]:
    """The stack file's values as the Pulumi CLI would pass them (objects JSON-encoded).

    Every key is kept, so model.load can say which ones it does not read (a namespace typo would
    otherwise drop a whole section without a word). Bad YAML is one ConfigError line: file, line, problem.
    """
    try:
        document = yaml.load(path.read_text(), Loader=_StrictLoader) or {}
    except yaml.MarkedYAMLError as exc:
        mark = exc.problem_mark or exc.context_mark
        where = f"{path}:{mark.line + 1}" if mark else str(path)
        raise ConfigError([f"{where}: not valid YAML: {exc.problem or exc.context}"]) from None
    except yaml.YAMLError as exc:
        raise ConfigError([f"{path}: not valid YAML: {exc}"]) from None
    config = document.get("config") if isinstance(document, dict) else None
    if not isinstance(config, dict):
        got = type(config).__name__ if config is not None else "nothing"
        raise ConfigError([f"{path}: `config` must be a mapping of stack settings, got {got}"])
    return {key: value if isinstance(value, str) else json.dumps(value) for key, value in config.items()}


def load_stack_file(path: Path) -> tuple[dict[str, Any], PlatformConfig]:
    """The file's values and its checked config; every problem (a missing file too) is a ConfigError."""
    if not path.is_file():
        raise ConfigError([f"{path}: no such stack file"])
    values = read_stack_values(path)
    return values, load_stack_values(values)


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
