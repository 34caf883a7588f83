"""pg_hba.conf for a Hetzner host (pure): TLS and SCRAM only, each role only from where it may come.

First match wins, so the reject lines for the whole internet come last and catch everything else.
"""

from __future__ import annotations

from dataclasses import dataclass

from postgres_platform.model.config import PlatformConfig
from postgres_platform.model.names import AUTH_ROLE, MONITORING_ROLE, REPLICATION_ROLE, SUPERUSER
from postgres_platform.render.sql import ident


@dataclass(frozen=True)
class HbaSources:
    app_cidrs: tuple[str, ...]  # the private subnet (apps, and PgBouncer on the host's private IP)
    admin_cidrs: tuple[str, ...]  # the operator and the postgresql provider
    replica_ip: str | None = None  # streaming standby, replication connections only
    monitor_ips: tuple[str, ...] = ()  # where postgres_exporter connects from (its host's private IP)


def render_pg_hba(config: PlatformConfig, sources: HbaSources) -> str:
    rows: list[tuple[str, str, str, str, str]] = [("local", "all", SUPERUSER, "", "peer")]
    rows += [("hostssl", "all", SUPERUSER, cidr, "scram-sha-256") for cidr in sources.admin_cidrs]
    for cidr in sources.app_cidrs:
        for app, spec in config.apps.items():
            for login in config.logins(app):
                rows.append(("hostssl", ident(spec.database), ident(login.role), cidr, "scram-sha-256"))
        databases = ",".join(ident(db) for db in config.databases)
        rows.append(("hostssl", databases, ident(AUTH_ROLE), cidr, "scram-sha-256"))
        rows += [("hostssl", "all", ident(role), cidr, "scram-sha-256") for role in config.external_roles]
    # The monitoring role: only the postgres database, only from the exporters' hosts.
    rows += [("hostssl", "postgres", MONITORING_ROLE, f"{ip}/32", "scram-sha-256") for ip in sources.monitor_ips]
    if sources.replica_ip:
        rows.append(("hostssl", "replication", REPLICATION_ROLE, f"{sources.replica_ip}/32", "scram-sha-256"))
    rows += [("host", "all", "all", "0.0.0.0/0", "reject"), ("host", "all", "all", "::/0", "reject")]
    widths = [max(len(row[i]) for row in rows) for i in range(4)]
    return "".join(
        "  ".join(cell.ljust(width) for cell, width in zip(row[:4], widths, strict=True)) + f"  {row[4]}\n"
        for row in rows
    )
