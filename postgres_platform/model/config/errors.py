"""Every problem with a stack config as one line: `key.path: what is wrong, got <value>`."""

from __future__ import annotations

import json
from collections.abc import Mapping
from typing import Any

from pydantic import ValidationError


class ConfigError(Exception):
    """Bad stack config: one line per problem, each naming its key path and value."""

    def __init__(self, lines: list[str]):
        self.lines = lines
        super().__init__("\n".join(lines))


def describe(value: Any) -> str:
    """The value as the stack file would spell it (JSON), or its repr where JSON has no spelling."""
    try:
        return json.dumps(value)
    except (TypeError, ValueError):
        return repr(value)


def problem(path: str, message: str, value: Any) -> str:
    return f"{path}: {message}, got {describe(value)}"


def validation_lines(exc: ValidationError) -> list[str]:
    """Pydantic's errors as our lines, in order, without repeats (a dict: linear in the number of errors)."""
    lines: dict[str, None] = {}
    union_paths: set[str] = set()
    for error in exc.errors():
        path = _path(error["loc"])
        if any(_is_branch(part) for part in error["loc"]):
            # Each branch of a union (a role name or `postgres`) fails on its own: the first says it.
            if path in union_paths:
                continue
            union_paths.add(path)
        if error["type"] == "missing":
            got = "nothing"
        elif error["loc"] and error["loc"][-1] == "[key]":
            got = describe(error["loc"][-2])  # a bad mapping key: the key is the value
        else:
            got = describe(error["input"])
        lines[f"{path}: {_message(error)}, got {got}"] = None
    return list(lines)


def _message(error: Mapping[str, Any]) -> str:
    kind = error["type"]
    if kind == "missing":
        return "is required"
    if kind == "extra_forbidden":
        return "is not a known setting"
    message = str(error["msg"]).removeprefix("Value error, ")
    for pydantic_words, ours in (
        ("Input should be", "must be"),
        ("Dictionary should", "must"),
        ("List should", "must"),
    ):
        message = message.replace(pydantic_words, ours)
    return message


def _is_branch(part: int | str) -> bool:
    """A name pydantic adds to the path for a union's branch (`str`, `function-after[...]`, `literal[...]`)."""
    if not isinstance(part, str) or part == "[key]":
        return False
    return part in ("str", "int", "float", "bool") or "[" in part


def _path(loc: tuple[int | str, ...]) -> str:
    parts: list[str] = []
    for part in loc:
        if part == "[key]" or _is_branch(part):  # a bad mapping key is already the last part
            continue
        if isinstance(part, int):
            parts[-1] = f"{parts[-1]}[{part}]"
        else:
            parts.append(str(part))
    return ".".join(parts)
