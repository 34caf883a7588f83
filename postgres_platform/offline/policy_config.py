"""The policy pack's config for a stack, from its stack config (the one source of truth)."""

from __future__ import annotations

from typing import Any

from postgres_platform.model import budget
from postgres_platform.model.budget import PATRONI, PGBACKREST
from postgres_platform.model.config import PlatformConfig
from postgres_platform.model.names import REPLICATION_ROLE


def _adopted_server(config: PlatformConfig) -> dict[str, Any]:
    """target existing: the server's settings as the stack describes them (no container declares them)."""
    if not config.adopted:
        return {}
    pg = config.postgres
    settings = {
        "max_connections": pg.max_connections,
        "superuser_reserved_connections": pg.superuser_reserved_connections,
    }
    return {"adoptedServer": settings}


def _cluster_ports(config: PlatformConfig) -> dict[str, Any]:
    """Patroni's and etcd's ports (hetzner.failover), which the firewall may open to private sources only."""
    if config.hetzner is None or not config.hetzner.failover.enabled:
        return {}
    return {"no-public-database-ports": {"clusterPorts": list(config.hetzner.failover.ports().values())}}


def policy_config(config: PlatformConfig) -> dict[str, Any]:
    """From what the stack is, never from its name: every Hetzner stack holds real data, so an
    unprotected data volume blocks its update (a stack called prod-eu is no exception)."""
    return {
        "connection-budget": {
            "adminHeadroom": config.postgres.admin_headroom,
            "externalRoles": {name: spec.connection_limit for name, spec in config.external_roles.items()},
            # Slots held by no declared role (pgBackRest and Patroni run as the superuser), counted like the
            # config does.
            "systemSlots": {
                e.role: e.limit
                for e in budget.entries(config)
                if e.kind == "system" and e.role in (PGBACKREST, PATRONI)
            },
            **_adopted_server(config),
        },
        **_cluster_ports(config),
        "bounded-roles": {"replicationRoles": [REPLICATION_ROLE] if config.hetzner and config.hetzner.replicas else []},
        "protected-data": {"enforcementLevel": "mandatory" if config.target == "hetzner" else "advisory"},
    }
