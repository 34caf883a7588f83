"""From stack config values to a checked PlatformConfig: fields, cross-references, then the budget."""

from __future__ import annotations

import contextlib
import json
from collections.abc import Mapping
from typing import Any

from postgres_platform.model import budget
from postgres_platform.model.config import ConfigError, PlatformConfig, validate
from postgres_platform.model.names import NAMESPACE


def parse(raw: Mapping[str, Any]) -> PlatformConfig:
    """The namespace's values (keys without `postgres-platform:`), checked; ConfigError lists every problem."""
    config = validate(raw)
    problems = budget.problems(config)
    if problems:
        raise ConfigError(problems)
    return config


def load_stack_values(values: Mapping[str, Any]) -> PlatformConfig:
    """Parse `postgres-platform:*` values as Pulumi hands them over (objects JSON-encoded strings)."""
    prefix = f"{NAMESPACE}:"
    raw: dict[str, Any] = {}
    for key, value in values.items():
        if not key.startswith(prefix):
            continue
        name = key[len(prefix) :]
        if isinstance(value, str) and name != "target":
            with contextlib.suppress(json.JSONDecodeError):  # a plain string stays as it is
                value = json.loads(value)
        raw[name] = value
    return parse(raw)
