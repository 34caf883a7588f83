"""The policy pack's config for a stack, from its stack config (the one source of truth)."""

from __future__ import annotations

from typing import Any

from postgres_platform.model.config import PlatformConfig
from postgres_platform.model.names import REPLICATION_ROLE

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
