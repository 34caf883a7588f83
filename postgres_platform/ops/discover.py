"""Discovery on a running server (the first step of adopting it): who is connected, what they write, who owns what.

`sample()` reads the server over a window: pg_stat_activity every SAMPLE_INTERVAL (each client's peak
connections and the statements seen, by database and application_name; a session holding a
transaction ID has written), pg_stat_user_tables at both ends in every database (rows inserted,
updated, deleted in between: no stats reset), the owners per schema and any migrations table. With
`log_writes`, the writes come from the server's statement log for the window (statement_log.py):
none is missed. `suggest()` is pure: an `apps:` block from what each client did.
"""

from __future__ import annotations

import math
import re
import time
from collections import defaultdict
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

import psycopg
from psycopg.conninfo import make_conninfo

from postgres_platform.model.config import IDENTIFIER, RESERVED_NAMES
from postgres_platform.model.config.types import EXTENSION_SCHEMA_PREFIXES, RESERVED_SCHEMAS
from postgres_platform.ops import statement_log
from postgres_platform.ops.statements import statement_kind

SAMPLE_INTERVAL = 0.1  # seconds between pg_stat_activity reads
# discover's own sessions: left out of what it reports (a closed one's backend lingers a moment).
APPLICATION_NAME = "postgres-platform-discover"
MIGRATION_TABLES = (
    "alembic_version",
    "schema_migrations",
    "flyway_schema_history",
    "_prisma_migrations",
    "django_migrations",
    "knex_migrations",
)
SYSTEM_SCHEMAS = "n.nspname NOT IN ('pg_catalog', 'information_schema') AND n.nspname !~ '^pg_(toast|temp)'"


@dataclass
class Client:
    """Connections of one application_name to one database as one role."""

    role: str
    database: str
    application_name: str
    superuser: bool
    peak: int = 0
    kinds: set[str] = field(default_factory=set)


@dataclass(frozen=True)
class Discovery:
    seconds: float
    connections: list[dict[str, Any]]  # now: role, database, applicationName, clientAddr, state, count
    clients: list[Client]
    tables: list[dict[str, Any]]  # database, schema, table, inserted, updated, deleted (the window's)
    owners: list[dict[str, Any]]  # database, schema, schemaOwner, objectOwners {role: count}
    migration_tables: list[dict[str, str]]  # database, table
    # "log": writes read from the server's statement log (complete); "samples": pg_stat_activity reads
    # and each session's transaction ID (a write between two reads can be missed)
    evidence: str = "samples"


ACTIVITY = f"""
SELECT r.rolname, a.datname, a.application_name, host(a.client_addr), a.state, a.query, r.rolsuper,
  a.backend_xid IS NOT NULL
FROM pg_catalog.pg_stat_activity a JOIN pg_catalog.pg_roles r ON r.oid = a.usesysid
WHERE a.backend_type = 'client backend' AND a.pid <> pg_catalog.pg_backend_pid() AND a.datname IS NOT NULL
  AND a.application_name <> '{APPLICATION_NAME}'
"""
TABLE_STATS = f"""
SELECT n.nspname, c.relname, s.n_tup_ins, s.n_tup_upd, s.n_tup_del
FROM pg_catalog.pg_stat_user_tables s JOIN pg_catalog.pg_class c ON c.oid = s.relid
JOIN pg_catalog.pg_namespace n ON n.oid = c.relnamespace WHERE {SYSTEM_SCHEMAS}
"""
OWNERS = f"""
SELECT n.nspname, pg_catalog.pg_get_userbyid(n.nspowner),
  (SELECT pg_catalog.json_object_agg(o.owner, o.n) FROM (SELECT pg_catalog.pg_get_userbyid(c.relowner) AS owner,
     count(*) AS n FROM pg_catalog.pg_class c WHERE c.relnamespace = n.oid AND c.relkind IN ('r','p','v','m','S')
     GROUP BY 1) o)
FROM pg_catalog.pg_namespace n WHERE {SYSTEM_SCHEMAS} ORDER BY 1
"""
MIGRATIONS = f"""
SELECT n.nspname || '.' || c.relname FROM pg_catalog.pg_class c JOIN pg_catalog.pg_namespace n ON n.oid = c.relnamespace
WHERE c.relkind IN ('r', 'p') AND c.relname = ANY (%s) AND {SYSTEM_SCHEMAS} ORDER BY 1
"""


ClientKey = tuple[str, str, str]  # role, database, application_name
SessionKey = tuple[str, str, str, str | None, str]  # a client's key, its address and its sessions' state
Stats = dict[tuple[str, str, str], tuple[int, int, int]]  # (database, schema, table) -> (ins, upd, del)


def _ours(dsn: str, database: str | None = None) -> str:
    """The DSN as discover connects with it: its own application_name, to `database` if given."""
    extra = {"dbname": database} if database else {}
    return make_conninfo(dsn, application_name=APPLICATION_NAME, **extra)


def database_names(conn: psycopg.Connection[Any]) -> list[str]:
    rows = conn.execute(
        "SELECT datname FROM pg_catalog.pg_database WHERE datallowconn AND NOT datistemplate "
        "AND datname <> 'postgres' ORDER BY 1"
    ).fetchall()
    return [str(r[0]) for r in rows]


def table_stats(dsn: str, databases: list[str]) -> Stats:
    stats = {}
    for db in databases:
        with psycopg.connect(_ours(dsn, db), autocommit=True) as conn:
            for schema, table, ins, upd, dele in conn.execute(TABLE_STATS).fetchall():
                stats[(db, str(schema), str(table))] = (int(ins), int(upd), int(dele))
    return stats


Progress = Callable[[float], None]  # told the seconds of the window gone since it was last told


def sample(
    dsn: str, seconds: float, *, log_writes: bool = False, log_file: str | None = None, progress: Progress | None = None
) -> Discovery:
    """The server over `seconds`; with `log_writes`, writes read from its statement log (statement_log.py)."""
    with psycopg.connect(_ours(dsn), autocommit=True) as conn:
        databases = database_names(conn)
        before = table_stats(dsn, databases)
        if log_writes:
            with statement_log.window(conn, log_file, APPLICATION_NAME) as logged:
                clients, connections = _watch(conn, seconds, progress)
            _add_logged(clients, logged.written)
        else:
            clients, connections = _watch(conn, seconds, progress)
        after = table_stats(dsn, databases)
        owners, migrations = owners_and_migrations(dsn, databases)
    by_app = sorted(clients.values(), key=lambda c: (c.database, c.application_name))
    evidence = "log" if log_writes else "samples"
    return Discovery(seconds, connections, by_app, _written(before, after), owners, migrations, evidence)


def _add_logged(clients: dict[ClientKey, Client], written: list[statement_log.Written]) -> None:
    """The log's writes into the clients; one seen only in the log (between two reads) connected at least once."""
    for w in written:
        superuser = any(c.superuser for c in clients.values() if c.role == w.role)
        key = (w.role, w.database, w.application_name)
        client = clients.setdefault(key, Client(*key, superuser, 1))
        client.kinds.add(w.kind)


def _watch(
    conn: psycopg.Connection[Any], seconds: float, progress: Progress | None = None
) -> tuple[dict[ClientKey, Client], list[dict[str, Any]]]:
    """pg_stat_activity every SAMPLE_INTERVAL for `seconds`: each client's peak and statement kinds, and
    who is connected at the first read."""
    clients: dict[ClientKey, Client] = {}
    connections: list[dict[str, Any]] = []
    told = time.monotonic()
    deadline = told + seconds
    while True:
        if progress is not None:
            progress(min(deadline, time.monotonic()) - told)
            told = time.monotonic()
        now = _read_activity(conn, clients)
        if not connections:  # who is connected now: the first read
            connections = [
                {"role": r, "database": d, "applicationName": a, "clientAddr": c, "state": s, "count": n}
                for (r, d, a, c, s), n in sorted(now.items(), key=str)
            ]
        if time.monotonic() >= deadline:
            return clients, connections
        time.sleep(SAMPLE_INTERVAL)


def _read_activity(conn: psycopg.Connection[Any], clients: dict[ClientKey, Client]) -> dict[SessionKey, int]:
    """One read: into `clients` what each did and its peak; returned, the sessions per client, address and state."""
    counts: dict[ClientKey, int] = defaultdict(int)
    now: dict[SessionKey, int] = defaultdict(int)
    for role, db, app, addr, state, query, superuser, in_writing_transaction in conn.execute(ACTIVITY).fetchall():
        key = (str(role), str(db), str(app))
        client = clients.setdefault(key, Client(key[0], key[1], key[2], bool(superuser)))
        kind = statement_kind(str(query or ""))
        # A transaction ID is assigned at a transaction's first write: it wrote, whatever its last statement.
        client.kinds.add("write" if in_writing_transaction and kind == "read" else kind)
        counts[key] += 1
        now[(*key, None if addr is None else str(addr), str(state))] += 1
    for key, count in counts.items():
        clients[key].peak = max(clients[key].peak, count)
    return now


def owners_and_migrations(dsn: str, databases: list[str]) -> tuple[list[dict[str, Any]], list[dict[str, str]]]:
    owners, migrations = [], []
    for db in databases:
        with psycopg.connect(_ours(dsn, db), autocommit=True) as session:
            for schema, owner, objects in session.execute(OWNERS).fetchall():
                owners.append(
                    {
                        "database": db,
                        "schema": str(schema),
                        "schemaOwner": str(owner),
                        "objectOwners": dict(objects or {}),
                    }
                )
            for (table,) in session.execute(MIGRATIONS, (list(MIGRATION_TABLES),)).fetchall():
                migrations.append({"database": db, "table": str(table)})
    return owners, migrations


def _written(before: Stats, after: Stats) -> list[dict[str, Any]]:
    """The tables written in the window: rows inserted, updated and deleted in between."""
    tables = []
    for (database, schema, table), (ins, upd, dele) in sorted(after.items()):
        was = before.get((database, schema, table), (0, 0, 0))
        inserted, updated, deleted = ins - was[0], upd - was[1], dele - was[2]
        if inserted or updated or deleted:
            tables.append(
                {
                    "database": database,
                    "schema": schema,
                    "table": table,
                    "inserted": inserted,
                    "updated": updated,
                    "deleted": deleted,
                }
            )
    return tables


def app_name(application_name: str, database: str, taken: set[str]) -> str:
    """A role name from a client's application_name (webhook-receiver -> webhook_receiver)."""
    name = re.sub(r"[^a-z0-9_]+", "_", application_name.lower()).strip("_")[:60]
    if not name or not IDENTIFIER.fullmatch(name) or name in RESERVED_NAMES or name.startswith("pg_"):
        name = f"{database}_client"[:60]
    unique, n = name, 2
    while unique in taken:
        unique, n = f"{name}_{n}", n + 1
    taken.add(unique)
    return unique


def margin(peak: int) -> int:
    """Room above the peak seen in a short window: a quarter, at least two."""
    return max(2, math.ceil(peak / 4))


# Sessions of people and tools, never apps: interactive clients and the tool's own name.
TOOL_APPLICATIONS = re.compile(r"^(psql|pgadmin|dbeaver|datagrip|pg_dump|pg_restore|pg_basebackup|walreceiver)", re.I)


def is_tool(client: Client) -> bool:
    """A person or a tool, not an app: the `postgres` database, psql, pgAdmin, DBeaver, discover itself."""
    return (
        client.database == "postgres"
        or client.application_name == APPLICATION_NAME
        or bool(TOOL_APPLICATIONS.match(client.application_name))
    )


def written_databases(discovery: Discovery) -> set[str]:
    """The databases whose per-table counters show rows written in the window."""
    return {str(t["database"]) for t in discovery.tables}


def suggest(discovery: Discovery) -> dict[str, dict[str, Any]]:
    """An app per (database, application_name) seen, at the level of what it did and its peak plus a margin.

    DDL seen in the window means migrate; a migration that runs only at deploy is not seen: set
    `access: migrate` for apps that run one (their entrypoint runs it).
    """
    taken: set[str] = set()
    apps: dict[str, dict[str, Any]] = {}
    merged: dict[tuple[str, str], Client] = {}
    for client in (c for c in discovery.clients if not is_tool(c)):
        key = (client.database, client.application_name)
        if key in merged:
            merged[key].peak += client.peak
            merged[key].kinds |= client.kinds
        else:
            merged[key] = Client(
                client.role, client.database, client.application_name, client.superuser, client.peak, set(client.kinds)
            )
    # Only samples can miss a write: the statement log has every one.
    written = written_databases(discovery) if discovery.evidence == "samples" else set()
    for (database, application), client in sorted(merged.items()):
        access = "migrate" if "ddl" in client.kinds else "write" if "write" in client.kinds else "read"
        review = None
        if access == "read" and database in written:
            # The counters show writes no sample caught: never `read` here (it would end in permission denied).
            access = "write"
            review = {
                "problem": f"rows were written in {database} during the window, but no sample caught this "
                "client writing",
                "fix": "run discover --log-writes (a superuser DSN) to see who writes, or check what this app does; "
                "set access: read only if it never writes",
            }
        apps[app_name(application, database, taken)] = {
            "database": database,
            "access": access,
            "connectionLimit": client.peak + margin(client.peak),
            "seenAs": client.role,
            "applicationName": application,
            "peak": client.peak,
            "review": review,
        }
    return apps


def ours(schema: str) -> bool:
    """A schema the config may name (not pgbouncer's, a system one or an extension's)."""
    return schema not in RESERVED_SCHEMAS and not schema.startswith(EXTENSION_SCHEMA_PREFIXES)


def databases_block(discovery: Discovery) -> list[str]:
    """`databases:` as stack-file YAML: every database scanned but `postgres`, with its schemas (not an
    extension's: the program leaves those alone) and the migrations tables found there."""
    lines = ["  postgres-platform:databases:"]
    databases = sorted({o["database"] for o in discovery.owners} - {"postgres"})
    for db in databases:
        schemas = ", ".join(sorted(o["schema"] for o in discovery.owners if o["database"] == db and ours(o["schema"])))
        migrations = ", ".join(m["table"] for m in discovery.migration_tables if m["database"] == db)
        lines.append(f"    {db}:")
        lines.append(f"      schemas: [{schemas}]")
        if migrations:
            lines.append(f"      migrationTables: [{migrations}]")
    return lines if databases else []


def external_roles(discovery: Discovery) -> dict[str, int]:
    """The roles other than a superuser that clients (apps, people, tools) log in as now, and the limit to
    declare for each (its peak plus a margin): they keep connecting until the cutover moves them, so the
    budget counts them and the lockdown knows them."""
    peaks: dict[str, int] = {}
    for client in discovery.clients:
        if not client.superuser:
            peaks[client.role] = peaks.get(client.role, 0) + client.peak
    return {role: peak + margin(peak) for role, peak in sorted(peaks.items())}


def fragment(discovery: Discovery, apps: dict[str, dict[str, Any]]) -> str:
    """The whole suggestion, to paste under `config:` of a `target: existing` stack file."""
    lines = databases_block(discovery)
    lines.append(apps_block(apps))
    roles = external_roles(discovery)
    if roles:
        lines.append("  postgres-platform:externalRoles:  # seen logged in now: declared until the cutover moves them")
        lines += [f"    {role}: {{connectionLimit: {limit}}}" for role, limit in roles.items()]
    return "\n".join(lines)


def apps_block(apps: dict[str, dict[str, Any]]) -> str:
    """The suggestion as stack-file YAML (the keys of the config; what was seen in comments)."""
    lines = ["  postgres-platform:apps:"]
    for app, s in apps.items():
        lines.append(
            f"    {app}: {{database: {s['database']}, access: {s['access']}, connectionLimit: "
            f"{s['connectionLimit']}}}  # seen: {s['applicationName'] or '(no application_name)'} as "
            f"{s['seenAs']}, peak {s['peak']}" + (f"; REVIEW: {s['review']['problem']}" if s.get("review") else "")
        )
    return "\n".join(lines)
