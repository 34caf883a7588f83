"""The connection budget: who may hold how many of a server's slots (pure arithmetic, no pulumi).

    sum(app limits) + sum(external limits) + system login roles + adminHeadroom
        <= maxConnections - superuserReservedConnections

PgBouncer logs in to Postgres as each app's own role, so pooled and direct connections of an app
share its CONNECTION LIMIT: PgBouncer adds no slots of its own beyond the auth role's.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Literal

from postgres_platform.model.config import PlatformConfig
from postgres_platform.model.names import AUTH_ROLE

PGBACKREST = "pgbackrest"  # budget entry of the backup process (render.backup.CONNECTIONS)
PGBACKREST_CONNECTIONS = 2

EntryKind = Literal["app", "external", "system"]


@dataclass(frozen=True)
class Entry:
    role: str
    database: str | None
    limit: int
    kind: EntryKind
    direct: int | None = None  # an app's slots the pool never takes (directConnections)


@dataclass(frozen=True)
class ServerBudget:
    name: str
    max_connections: int
    superuser_reserved: int
    headroom: int
    entries: tuple[Entry, ...]
    reserved: int = 0  # reserved_connections (PostgreSQL 16): slots for pg_use_reserved_connections members

    @property
    def total(self) -> int:
        return sum(entry.limit for entry in self.entries)

    @property
    def usable(self) -> int:
        return self.max_connections - self.superuser_reserved - self.reserved

    @property
    def free(self) -> int:
        return self.usable - self.headroom - self.total

    def as_dict(self) -> dict[str, object]:
        """The shape of preflight's --json and of the `budget` stack output."""
        return {
            "name": self.name,
            "maxConnections": self.max_connections,
            "superuserReserved": self.superuser_reserved,
            "headroom": self.headroom,
            "entries": [
                {"role": e.role, "database": e.database, "limit": e.limit, "kind": e.kind, "direct": e.direct}
                for e in self.entries
            ],
            "total": self.total,
            "free": self.free,
        }


def entries(config: PlatformConfig) -> tuple[Entry, ...]:
    # Both alternating logins of an app are valid at once (that is the point): both hold its limit.
    apps = [
        Entry(login.role, spec.database, spec.connection_limit, "app", spec.direct_slots() if spec.pooled else None)
        for app, spec in config.apps.items()
        for login in config.logins(app)
    ]
    external = [Entry(name, None, spec.connection_limit, "external") for name, spec in config.external_roles.items()]
    system = [Entry(AUTH_ROLE, None, config.auth_role_limit(), "system")] if config.pgbouncer is not None else []
    if config.backup is not None:
        # pgBackRest connects as the superuser (no role limit holds it): a backup and a check at once.
        system.append(Entry(PGBACKREST, None, PGBACKREST_CONNECTIONS, "system"))
    return tuple(apps + external + system)


def compute(config: PlatformConfig) -> list[ServerBudget]:
    """One budget per Postgres server: a streaming replica has the same roles, limits and settings.

    The replication role's walsenders count in max_wal_senders, not max_connections: not an entry.
    """
    pg = config.postgres
    servers = ["primary"] + (["replica"] if config.hetzner is not None and config.hetzner.replicas else [])
    return [
        ServerBudget(
            name=name,
            max_connections=pg.max_connections,
            superuser_reserved=pg.superuser_reserved_connections,
            headroom=pg.admin_headroom,
            entries=entries(config),
            reserved=reserved_connections(config),
        )
        for name in servers
    ]


def reserved_connections(config: PlatformConfig) -> int:
    """PostgreSQL 16's reserved_connections (from postgres.settings; config checks it is an integer)."""
    value = config.postgres.settings.get("reserved_connections", 0)
    return value if isinstance(value, int) and not isinstance(value, bool) else 0


def render_table(server: ServerBudget) -> str:
    """A plain-text table for people: one row per role, then the totals."""
    rows: list[tuple[str, ...]] = [
        (e.role, e.database or "-", e.kind, str(e.limit), "-" if e.direct is None else str(e.direct))
        for e in server.entries
    ]
    rows += [
        ("admin headroom", "-", "reserve", str(server.headroom), "-"),
        ("superuser reserved", "-", "reserve", str(server.superuser_reserved), "-"),
        *([("reserved_connections", "-", "reserve", str(server.reserved), "-")] if server.reserved else []),
    ]
    header = ("role", "database", "kind", "limit", "direct")  # direct: of the limit, kept from the pool
    widths = [max(len(r[i]) for r in [header, *rows]) for i in range(5)]

    def line(row: tuple[str, ...]) -> str:
        return "  ".join(
            cell.ljust(w) if i < 3 else cell.rjust(w) for i, (cell, w) in enumerate(zip(row, widths, strict=True))
        )

    used = server.total + server.headroom + server.superuser_reserved + server.reserved
    return "\n".join(
        [
            f"server {server.name}: {used} of {server.max_connections} max_connections promised, {server.free} free",
            line(header),
            *(line(r) for r in rows),
        ]
    )


def problems(config: PlatformConfig) -> list[str]:
    """One config error per server whose budget does not fit, naming both sides of the sum."""
    pg = config.postgres
    return [
        f"postgres.maxConnections: connection budget of server {server.name} does not fit: roles hold "
        f"{server.total} + adminHeadroom {server.headroom} = {server.total + server.headroom} > {server.usable} "
        f"usable (maxConnections {pg.max_connections} - superuserReservedConnections "
        f"{pg.superuser_reserved_connections}{f' - reserved_connections {server.reserved}' if server.reserved else ''})"
        f", got {pg.max_connections}"
        for server in compute(config)
        if server.free < 0
    ]
