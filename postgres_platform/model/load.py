"""From stack config values to a checked PlatformConfig: fields, cross-references, then the budget."""

from __future__ import annotations

import contextlib
import difflib
import json
from collections.abc import Iterable, Mapping
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


def near_misses(keys: Iterable[str]) -> list[str]:
    """Keys whose namespace looks like ours but is not: `postgres-platfrom:externalRoles` would be
    dropped silently (and with it, say, the external roles' slots from the budget)."""
    problems = []
    for key in keys:
        namespace = key.partition(":")[0]
        if namespace != NAMESPACE and difflib.get_close_matches(namespace, [NAMESPACE], n=1, cutoff=0.8):
            problems.append(f"{key}: its namespace is not {NAMESPACE}, so nothing reads it (a typo?), got {key!r}")
    return problems


def load_stack_values(values: Mapping[str, Any]) -> PlatformConfig:
    """Parse `postgres-platform:*` values as Pulumi hands them over (objects JSON-encoded strings)."""
    problems = near_misses(values)
    if problems:
        raise ConfigError(problems)
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
