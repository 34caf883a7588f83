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
from postgres_platform.model.names import AUTH_ROLE, MONITORING_ROLE, REPLICATION_ROLE

PGBACKREST = "pgbackrest"  # budget entry of the backup process (render.backup.CONNECTIONS)
PGBACKREST_CONNECTIONS = 2
# The monitoring role's hard CONNECTION LIMIT: postgres_exporter keeps one connection, a second lets a
# scrape overlap a slow one (or an operator check the role's view) without the exporter being refused.
MONITORING_CONNECTIONS = 2


def monitored(config: PlatformConfig) -> bool:
    """Whether the program creates the monitoring role: everywhere but a managed server, whose CREATEROLE
    admin may not grant pg_monitor (PostgreSQL 16: only with the ADMIN option on it) and whose provider
    monitors it."""
    return config.existing is None or config.existing.admin_superuser


# Patroni (hetzner.failover) holds slots no declared role limits: its HA loop and its REST API's own
# connection (the load balancer's health checks are answered from it), both as the superuser, and
# pg_rewind's from the other member after a failover (as REWIND_ROLE, which Patroni creates). etcd, the
# DCS, holds none: Patroni talks to it, not Postgres.
PATRONI = "patroni"
PATRONI_CONNECTIONS = 3

# Walsenders have their own pool, max_wal_senders (Postgres' default 10), not max_connections. The
# replication role's: the standby's stream and pg_basebackup's two (WAL streamed beside the copy) while a
# member is rebuilt from the primary; with Patroni a rejoining old primary streams too.
DEFAULT_MAX_WAL_SENDERS = 10
REPLICA_WAL_SENDERS = 2
FAILOVER_WAL_SENDERS = 3

EntryKind = Literal["app", "external", "system"]


@dataclass(frozen=True)
class Entry:
    role: str
    database: str | None
    limit: int
    kind: EntryKind
    direct: int | None = None  # an app's slots the pool never takes (directConnections)
    key: str = ""  # the stack key that sets its limit (for people: what to lower)


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

    @property
    def over(self) -> int:
        """By how many slots the promises exceed what the server has (0 when the budget fits)."""
        return max(0, -self.free)

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
        Entry(
            login.role,
            spec.database,
            spec.connection_limit,
            "app",
            spec.direct_slots() if spec.pooled else None,
            f"apps.{app}.connectionLimit",
        )
        for app, spec in config.apps.items()
        for login in config.logins(app)
    ]
    external = [
        Entry(name, None, spec.connection_limit, "external", key=f"externalRoles.{name}.connectionLimit")
        for name, spec in config.external_roles.items()
    ]
    system = (
        [Entry(AUTH_ROLE, None, config.auth_role_limit(), "system", key="pgbouncer.authConnectionLimit")]
        if config.pgbouncer is not None
        else []
    )
    if monitored(config):  # the exporters' role (render.monitoring) holds its slots too
        system.append(Entry(MONITORING_ROLE, None, MONITORING_CONNECTIONS, "system", key="monitoring"))
    if config.backup is not None:
        # pgBackRest connects as the superuser (no role limit holds it): a backup and a check at once.
        system.append(Entry(PGBACKREST, None, PGBACKREST_CONNECTIONS, "system", key="backup"))
    if config.hetzner is not None and config.hetzner.failover.enabled:
        system.append(Entry(PATRONI, None, PATRONI_CONNECTIONS, "system", key="hetzner.failover"))
    return tuple(apps + external + system)


def compute(config: PlatformConfig) -> list[ServerBudget]:
    """One budget per Postgres server: a streaming replica has the same roles, limits and settings.

    The replication role's walsenders count in max_wal_senders, not max_connections: not an entry here
    (wal_sender_entries counts them against max_wal_senders).
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


def wal_sender_entries(config: PlatformConfig) -> tuple[Entry, ...]:
    """Who may hold walsenders on the primary (Patroni itself holds none: it streams nothing)."""
    hetzner = config.hetzner
    if hetzner is None or not hetzner.replicas:
        return ()
    if hetzner.failover.enabled:
        return (Entry(REPLICATION_ROLE, None, FAILOVER_WAL_SENDERS, "system", key="hetzner.failover"),)
    return (Entry(REPLICATION_ROLE, None, REPLICA_WAL_SENDERS, "system", key="hetzner.replicas"),)


def max_wal_senders(config: PlatformConfig) -> int | None:
    """max_wal_senders from postgres.settings (Postgres' default when absent); None when not a number."""
    value = config.postgres.settings.get("max_wal_senders", DEFAULT_MAX_WAL_SENDERS)
    if isinstance(value, bool):
        return None
    if isinstance(value, int):
        return value
    return int(value) if isinstance(value, str) and value.isdigit() else None


def wal_sender_problems(config: PlatformConfig) -> list[str]:
    """One line when the walsenders the stack needs do not fit max_wal_senders."""
    needed = sum(entry.limit for entry in wal_sender_entries(config))
    available = max_wal_senders(config)
    if not needed or available is None or needed <= available:
        return []
    message = f"leaves {available} walsenders, the replication role may need {needed} (a stream and a base backup)"
    return [f"postgres.settings.max_wal_senders: {message}, got {available}"]


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
        *([(OVERFLOW_ROW, "-", "overflow", str(server.over), "-")] if server.over else []),
    ]
    header = ("role", "database", "kind", "limit", "direct")  # direct: of the limit, kept from the pool
    widths = [max(len(r[i]) for r in [header, *rows]) for i in range(5)]

    def line(row: tuple[str, ...]) -> str:
        return "  ".join(
            cell.ljust(w) if i < 3 else cell.rjust(w) for i, (cell, w) in enumerate(zip(row, widths, strict=True))
        )

    return "\n".join(
        [
            summary_line(server),
            line(header),
            *(line(r) for r in rows),
        ]
    )


def summary_line(server: ServerBudget) -> str:
    """`server primary: 76 of 100 max_connections promised, 24 free` (or `, 12 over`)."""
    used = server.total + server.headroom + server.superuser_reserved + server.reserved
    left = f"{server.over} OVER" if server.over else f"{server.free} free"
    return f"server {server.name}: {used} of {server.max_connections} max_connections promised, {left}"


OVERFLOW_ROW = "OVER BUDGET"  # the row render_table adds for the slots promised beyond max_connections
LARGEST = 3  # consumers named when nothing tells which role pushed the budget over


@dataclass(frozen=True)
class Growth:
    """A role whose limit is new or higher than in an older config."""

    entry: Entry
    before: int | None  # None: the role is new

    @property
    def added(self) -> int:
        return self.entry.limit - (self.before or 0)

    def describe(self) -> str:
        if self.before is None:
            return f"{self.entry.role} is new (+{self.entry.limit}, {self.entry.key or self.entry.kind})"
        return f"{self.entry.role} grew {self.before} -> {self.entry.limit} (+{self.added}, {self.entry.key})"

    def as_dict(self) -> dict[str, object]:
        return {"role": self.entry.role, "key": self.entry.key, "limit": self.entry.limit, "before": self.before}


def growth(old: ServerBudget, new: ServerBudget) -> list[Growth]:
    """The roles of `new` whose limits are new or higher than in `old`, most added slots first."""
    before = {entry.role: entry.limit for entry in old.entries}
    grown = [
        Growth(entry, before.get(entry.role))
        for entry in new.entries
        if entry.role not in before or entry.limit > before[entry.role]
    ]
    return sorted(grown, key=lambda g: (-g.added, g.entry.role))


def largest(server: ServerBudget, count: int = LARGEST) -> list[Entry]:
    return sorted(server.entries, key=lambda e: (-e.limit, e.role))[:count]


def _settings_changed(old: ServerBudget, new: ServerBudget) -> list[str]:
    pairs = (
        ("maxConnections", old.max_connections, new.max_connections),
        ("superuserReservedConnections", old.superuser_reserved, new.superuser_reserved),
        ("reserved_connections", old.reserved, new.reserved),
        ("adminHeadroom", old.headroom, new.headroom),
    )
    return [f"{name} {before} -> {after}" for name, before, after in pairs if before != after]


def _culprits(server: ServerBudget, old: ServerBudget | None, against: str) -> str:
    grown = growth(old, server) if old is not None else []
    if grown:
        return f"against {against}: {', '.join(g.describe() for g in grown)}"
    named = ", ".join(f"{e.role} {e.limit}" for e in largest(server))
    if old is None:
        return f"the largest: {named}"
    settings = _settings_changed(old, server)
    return f"against {against} no role grew{' (' + ', '.join(settings) + ')' if settings else ''}; the largest: {named}"


def overflow_line(server: ServerBudget, old: ServerBudget | None = None, against: str = "") -> str:
    """One config error for a server over budget: both sides of the sum, by how much, and what pushed it
    over: against an older config (`old`, from the file `against`) the roles that grew or are new, or
    with nothing to compare the largest consumers."""
    reserved = f" - reserved_connections {server.reserved}" if server.reserved else ""
    return (
        f"postgres.maxConnections: connection budget of server {server.name} does not fit: roles hold "
        f"{server.total} + adminHeadroom {server.headroom} = {server.total + server.headroom} > {server.usable} "
        f"usable (maxConnections {server.max_connections} - superuserReservedConnections "
        f"{server.superuser_reserved}{reserved}), {server.over} over; {_culprits(server, old, against)} "
        f"(lower their connectionLimit or raise maxConnections), got {server.max_connections}"
    )


class OverBudget(str):
    """A config error line (a str, as every other) that also carries the budget it is about, so that a
    command can still print the budget table with its overflow (preflight)."""

    server: ServerBudget

    def __new__(cls, server: ServerBudget) -> OverBudget:
        line = super().__new__(cls, overflow_line(server))
        line.server = server
        return line


def problems(config: PlatformConfig) -> list[str]:
    """One config error per server whose budget does not fit, naming both sides of the sum."""
    over: list[str] = [OverBudget(server) for server in compute(config) if server.free < 0]
    return over + wal_sender_problems(config)
