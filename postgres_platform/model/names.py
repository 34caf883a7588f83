"""Names, ports and paths the program owns, defined once; config checks that no app or role takes them."""

from __future__ import annotations

import hashlib

NAMESPACE = "postgres-platform"
AUTH_ROLE = "pgbouncer_auth"  # PgBouncer's auth_user: may only run the lookup function
PGBOUNCER_ADMIN = "pgbouncer_admin"  # PgBouncer console user; exists in PgBouncer only, not in Postgres
AUTH_SCHEMA = "pgbouncer"  # schema of the lookup function in every app database
AUTH_FUNCTION = "get_auth"
SUPERUSER = "postgres"
REPLICATION_ROLE = "replicator"  # the streaming replica's login (REPLICATION, walsenders only)
REWIND_ROLE = "rewind_user"  # Patroni's pg_rewind login (hetzner.failover; render.patroni.REWIND_USER)
# The exporters' login: a member of pg_monitor (reads pg_stat_activity and pg_ls_waldir, owns nothing), and a
# PgBouncer stats_users member (SHOW POOLS/STATS on the console, no admin command).
MONITORING_ROLE = "pgplatform_monitor"
PG_MONITOR = "pg_monitor"  # the built-in role it is a member of
COMPONENT_LABEL = "postgres-platform.component"  # Docker label the policies find containers and volumes by
# A container's role: its COMPONENT_LABEL value and the suffix of its name (container_name).
PRIMARY = "postgres"
REPLICA = "postgres-replica"
PGBOUNCER = "pgbouncer"
POSTGRES_SERVERS = (PRIMARY, REPLICA)
PGBOUNCER_CONSOLE_DB = "pgbouncer"  # PgBouncer's admin console (SHOW POOLS, SHOW STATS)

POSTGRES_PORT = 5432
PGBOUNCER_PORT = 6432
PGDATA = "/var/lib/postgresql/data"  # inside the Postgres container
POSTGRES_CONFIG_DIR = "/etc/postgresql"  # pg_hba.conf and TLS files inside the Postgres container
PGBOUNCER_CONFIG_DIR = "/etc/pgbouncer"
POSTGRES_UID = "999"  # the official Postgres image's postgres user
PGBOUNCER_UID = "70"  # the PgBouncer image's unprivileged user (Alpine); PgBouncer refuses root

MAX_IDENTIFIER_BYTES = 63  # Postgres truncates longer names silently (NAMEDATALEN - 1)


def container_name(stack: str, role: str) -> str:
    """A container's fixed name per stack and role (PRIMARY, REPLICA, PGBOUNCER)."""
    return f"postgres-platform-{stack}-{role}"


def owner_role(database: str) -> str:
    """The NOLOGIN role that owns a database and its schemas (and what migrate apps create)."""
    return f"{database}_owner"


def group_role(database: str, level: str, schemas: tuple[str, ...] | None = None) -> str:
    """The NOLOGIN role holding one access level's grants on a database's schemas.

    `<db>_read` / `<db>_write` cover every schema of the database; an app limited to some of them gets
    `<db>_<level>_<schema>_<schema>...`, or a short hash of the list where that name would be too long.
    """
    base = f"{database}_{level}"
    if schemas is None:
        return base
    readable = f"{base}_{'_'.join(schemas)}"
    if len(readable.encode()) <= MAX_IDENTIFIER_BYTES:
        return readable
    return f"{base}_{hashlib.sha256(','.join(schemas).encode()).hexdigest()[:10]}"


# COMPONENT_LABEL's value on the Docker volume holding PGDATA (local stacks; a Hetzner stack's is an hcloud volume).
DATA_VOLUME = "postgres-data"

LOOPBACK = "127.0.0.1"  # where the local target publishes its ports and the harness runs its servers
