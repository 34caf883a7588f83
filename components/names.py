"""Names the program itself owns; config checks that no app or external role takes them."""

NAMESPACE = "postgres-platform"
AUTH_ROLE = "pgbouncer_auth"  # PgBouncer's auth_user: may only run the lookup function
PGBOUNCER_ADMIN = "pgbouncer_admin"  # PgBouncer console user; exists in PgBouncer only, not in Postgres
AUTH_SCHEMA = "pgbouncer"  # schema of the lookup function in every app database
AUTH_FUNCTION = "get_auth"
SUPERUSER = "postgres"
REPLICATION_ROLE = "replicator"  # the streaming replica's login (REPLICATION, walsenders only)
COMPONENT_LABEL = "postgres-platform.component"
PGBOUNCER_CONSOLE_DB = "pgbouncer"  # PgBouncer's admin console (SHOW POOLS, SHOW STATS)


def owner_role(database: str) -> str:
    """The NOLOGIN role that owns a database and its schemas."""
    return f"{database}_owner"
