"""The stack config: parsed and validated once, before any resource is declared.

Every problem becomes one line `key.path: what is wrong, got <value>`; all lines are reported together
so an operator fixes a stack file in one round. Pure: `model.load` feeds it the namespace's values
(from Pulumi or straight from a stack file) and adds the budget check.

The field types are in `types`, the models in `schema` and `targets` (each field's docstring is its
description in the configuration reference), the checks across fields in `checks`, the lines in `errors`.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from pydantic import ValidationError

from postgres_platform.model.config.checks import cross_checks
from postgres_platform.model.config.errors import ConfigError, validation_lines
from postgres_platform.model.config.monitoring import AlertmanagerConfig, EmailReceiverConfig, MonitoringConfig
from postgres_platform.model.config.schema import (
    AppConfig,
    DatabaseConfig,
    ExternalRoleConfig,
    Login,
    PgBouncerConfig,
    PlatformConfig,
    PostgresConfig,
)
from postgres_platform.model.config.targets import (
    BackupConfig,
    BackupSchedule,
    BackupVerify,
    ExistingConfig,
    FailoverConfig,
    HetznerConfig,
    LocalConfig,
    PgBouncerHostConfig,
    S3RepoConfig,
)
from postgres_platform.model.config.types import (
    IDENTIFIER,
    RESERVED_NAMES,
    AccessLevel,
    GroupLevel,
    SettingValue,
    level_of,
)

__all__ = [
    "IDENTIFIER",
    "RESERVED_NAMES",
    "AccessLevel",
    "AlertmanagerConfig",
    "AppConfig",
    "BackupConfig",
    "BackupSchedule",
    "BackupVerify",
    "ConfigError",
    "DatabaseConfig",
    "EmailReceiverConfig",
    "ExistingConfig",
    "ExternalRoleConfig",
    "FailoverConfig",
    "GroupLevel",
    "HetznerConfig",
    "LocalConfig",
    "Login",
    "MonitoringConfig",
    "PgBouncerConfig",
    "PgBouncerHostConfig",
    "PlatformConfig",
    "PostgresConfig",
    "S3RepoConfig",
    "SettingValue",
    "level_of",
    "validate",
]


def validate(raw: Mapping[str, Any]) -> PlatformConfig:
    """Validate the namespace's values (keys without the `postgres-platform:` prefix); no budget yet."""
    try:
        config = PlatformConfig.model_validate(dict(raw))
    except ValidationError as exc:
        raise ConfigError(validation_lines(exc)) from None
    problems = cross_checks(config)
    if problems:
        raise ConfigError(problems)
    return config
