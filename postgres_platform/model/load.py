"""From stack config values to a checked PlatformConfig: fields, cross-references, then the budget."""

from __future__ import annotations

import contextlib
import difflib
import json
from collections.abc import Iterable, Mapping
from typing import Any

from postgres_platform.model import budget
from postgres_platform.model.config import ConfigError, PlatformConfig, validate
from postgres_platform.model.config.monitoring import SECRET_KEYS as MONITORING_SECRET_KEYS
from postgres_platform.model.config.monitoring import SMTP_PASSWORD_KEY, WEBHOOK_URL_KEY
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


# Set with `pulumi config set --secret`; never in the models (so never in an output or a rendered file).
ADMIN_PASSWORD_KEY = "existingAdminPassword"  # target existing: the password of existing.adminUser
SECRET_KEYS = ("backupS3Key", "backupS3KeySecret", ADMIN_PASSWORD_KEY, *MONITORING_SECRET_KEYS)


def required_secrets(config: PlatformConfig) -> dict[str, str]:
    """The secret keys this config needs, and what for."""
    needed: dict[str, str] = {}
    if config.backup is not None and config.backup.repo == "s3":
        needed |= {key: "an s3 backup repo" for key in ("backupS3Key", "backupS3KeySecret")}
    if config.existing is not None:
        needed[ADMIN_PASSWORD_KEY] = f"target existing (the password of {config.existing.admin_user})"
    receiver = config.monitoring.alertmanager
    if receiver is not None and receiver.receiver == "webhook":
        needed[WEBHOOK_URL_KEY] = "monitoring.alertmanager.receiver webhook (its URL)"
    if receiver is not None and receiver.email is not None and receiver.email.username is not None:
        needed[SMTP_PASSWORD_KEY] = "monitoring.alertmanager.email.username (its SMTP password)"
    return needed


def _secret_problems(values: Mapping[str, Any], secret_keys: Iterable[str] | None, needed: dict[str, str]) -> list[str]:
    """A secret given as plain text is always refused; a missing one only where Pulumi runs (secret_keys
    given): an offline read of a stack file cannot tell, the keys may be set on the operator's copy."""
    problems = []
    for key in SECRET_KEYS:
        full = f"{NAMESPACE}:{key}"
        value = values.get(full)
        encrypted = isinstance(value, str) and value.startswith('{"secure":')  # as read from a stack file
        if value is None:
            if key in needed and secret_keys is not None:
                problems.append(
                    f"{key}: is required for {needed[key]} (pulumi config set --secret {full}), got nothing"
                )
        elif not (encrypted or full in set(secret_keys or ())):
            problems.append(
                f"{key}: must be set with `pulumi config set --secret`, not in plain YAML, got a plain value"
            )
    return problems


def load_stack_values(values: Mapping[str, Any], secret_keys: Iterable[str] | None = None) -> PlatformConfig:
    """Parse `postgres-platform:*` values as Pulumi hands them over (objects JSON-encoded strings).

    `secret_keys`: where Pulumi runs, the keys it marks secret (a stack file's `secure:` values count too).
    """
    problems = near_misses(values)
    if problems:
        raise ConfigError(problems)
    prefix = f"{NAMESPACE}:"
    raw: dict[str, Any] = {}
    for key, value in values.items():
        name = key.removeprefix(prefix)
        if not key.startswith(prefix) or name in SECRET_KEYS:  # secrets: checked below, never in the models
            continue
        if isinstance(value, str) and name != "target":
            with contextlib.suppress(json.JSONDecodeError):  # a plain string stays as it is
                value = json.loads(value)
        raw[name] = value
    config = parse(raw)
    problems = _secret_problems(values, secret_keys, required_secrets(config))
    if problems:
        raise ConfigError(problems)
    return config
