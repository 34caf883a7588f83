"""pgbouncer.ini, its HBA and auth file, rendered from the config (pure; PgBouncer 1.24.1 and later).

PgBouncer logs in to Postgres as each app's own role with the SCRAM secret that auth_query returns,
so only two users ever appear in the auth file: the auth role (plain password: PgBouncer must log in
as it) and the console admin (a SCRAM verifier: it only logs in to PgBouncer).
"""

from __future__ import annotations

from dataclasses import dataclass

from postgres_platform.model.config import PlatformConfig
from postgres_platform.model.names import (
    AUTH_FUNCTION,
    AUTH_ROLE,
    AUTH_SCHEMA,
    MONITORING_ROLE,
    PGBOUNCER_ADMIN,
    PGBOUNCER_CONFIG_DIR,
    PGBOUNCER_CONSOLE_DB,
)
from postgres_platform.render.scram import stable_verifier

AUTH_QUERY = f"SELECT usename, passwd FROM {AUTH_SCHEMA}.{AUTH_FUNCTION}($1)"


@dataclass(frozen=True)
class Endpoints:
    """Where PgBouncer listens, where it finds Postgres, and where its files are."""

    listen_addr: str
    listen_port: int
    server_host: str
    server_port: int
    auth_file: str
    hba_file: str
    unix_socket_dir: str = ""  # empty: no socket (the container has no shared socket dir)
    tls: PgBouncerTls | None = None


@dataclass(frozen=True)
class PgBouncerTls:
    """TLS both ways: verify Postgres against the stack CA, and require TLS from clients."""

    ca_file: str
    cert_file: str  # PgBouncer's own certificate (the host's), offered to clients
    key_file: str


@dataclass(frozen=True)
class Pool:
    """One app's pool: PgBouncer database `name` is the app's database, for that app only."""

    name: str  # the app's name; the pooled DSN's dbname
    app: str
    users: tuple[str, ...]  # its login roles (two with alternating logins), each admitted to this pool only
    database: str
    pool_size: int
    reserve_pool: int

    @property
    def max_server_connections(self) -> int:
        return self.pool_size + self.reserve_pool


def pools(config: PlatformConfig) -> list[Pool]:
    """Per pooled app, server connections capped at its role's CONNECTION LIMIT.

    PgBouncer must never reach that wall: a refused server login fails clients instead of queueing
    them. A pool database per app (not `[users] app = max_user_connections=N`, which before 1.23 kept
    the user from logging in with auth_query at all, pgbouncer#484) caps it with no `[users]` entry,
    on any version; the HBA file keeps each app to its own.
    """
    pgbouncer = config.required_pgbouncer()
    result = []
    for app in config.pooled_apps():
        spec = config.apps[app]
        # The pool stops short of the limit by the app's direct slots (a migration gets in).
        poolable = spec.connection_limit - spec.direct_slots()
        pool_size = min(pgbouncer.default_pool_size, poolable)
        reserve = min(pgbouncer.reserve_pool_size, poolable - pool_size)
        users = tuple(login.role for login in config.logins(app))
        result.append(Pool(app, app, users, spec.database, pool_size, reserve))
    return result


def render_ini(config: PlatformConfig, endpoints: Endpoints) -> str:
    pgbouncer = config.required_pgbouncer()
    server = f"host={endpoints.server_host} port={endpoints.server_port}"
    databases = [
        f"{p.name} = {server} dbname={p.database} pool_size={p.pool_size} reserve_pool={p.reserve_pool} "
        f"max_db_connections={p.max_server_connections}"
        for p in pools(config)
    ]
    settings: dict[str, object] = {
        "listen_addr": endpoints.listen_addr,
        "listen_port": endpoints.listen_port,
        "unix_socket_dir": endpoints.unix_socket_dir,
        # hba: scram-sha-256 like the server, and each app admitted only to its own pool.
        "auth_type": "hba",
        "auth_hba_file": endpoints.hba_file,
        "auth_file": endpoints.auth_file,
        "auth_user": AUTH_ROLE,
        "auth_query": AUTH_QUERY,
        "admin_users": PGBOUNCER_ADMIN,
        # The exporters' role reads SHOW POOLS/STATS on the console; it may run no admin command.
        "stats_users": f"{PGBOUNCER_ADMIN}, {MONITORING_ROLE}",
        "pool_mode": pgbouncer.pool_mode,
        "max_client_conn": pgbouncer.max_client_conn,
        "query_wait_timeout": pgbouncer.query_wait_timeout,
        "default_pool_size": pgbouncer.default_pool_size,
        "reserve_pool_size": pgbouncer.reserve_pool_size,
        "reserve_pool_timeout": 3,
        "server_reset_query": "DISCARD ALL",
        # Protocol-level prepared statements survive transaction pooling (PgBouncer >= 1.21 tracks them;
        # every accepted build is 1.24.1 or later), so JDBC and asyncpg clients need no workaround.
        "max_prepared_statements": 200,
        # JDBC sends extra_float_digits at startup; PgBouncer would refuse the login otherwise.
        "ignore_startup_parameters": "extra_float_digits",
        "server_login_retry": 1,
        "log_connections": 0,
        "log_disconnections": 0,
    }
    if endpoints.tls is not None:
        settings |= {
            "server_tls_sslmode": "verify-full",
            "server_tls_ca_file": endpoints.tls.ca_file,
            "client_tls_sslmode": "require",
            "client_tls_ca_file": endpoints.tls.ca_file,
            "client_tls_cert_file": endpoints.tls.cert_file,
            "client_tls_key_file": endpoints.tls.key_file,
        }
    # The auth role logs in from the auth file, so a [users] cap is safe for it (unlike for apps):
    # lookups queue rather than overrun its CONNECTION LIMIT in a login storm. One slot stays
    # spare for a closing connection's backend, which holds its slot a moment after PgBouncer drops it.
    users = [f"{AUTH_ROLE} = max_user_connections={max(1, config.auth_role_limit() - 1)}"]
    lines = ["[databases]", *databases, "", "[users]", *users, "", "[pgbouncer]"]
    lines += [f"{key} = {value}" for key, value in settings.items()]
    return "\n".join(lines) + "\n"


def render_hba(config: PlatformConfig) -> str:
    """PgBouncer's own HBA: an app may use only its pool; the admin only the console; else reject."""
    console = [(PGBOUNCER_CONSOLE_DB, PGBOUNCER_ADMIN), (PGBOUNCER_CONSOLE_DB, MONITORING_ROLE)]
    rows = [(p.name, user) for p in pools(config) for user in p.users] + console
    lines = []
    for database, user in rows:
        for network in ("0.0.0.0/0", "::/0"):
            lines.append(f"host {database} {user} {network} scram-sha-256")
    return "\n".join(lines) + "\n"


def _quote(value: str) -> str:
    return '"' + value.replace('"', '""') + '"'


def render_auth_file(auth_password: str, admin_password: str, monitor_password: str | None = None) -> str:
    """userlist.txt: the auth role's password and the console users' SCRAM verifiers (the admin's, and
    the monitoring role's where given: the console takes its logins from this file, not auth_query)."""
    lines = [
        f"{_quote(AUTH_ROLE)} {_quote(auth_password)}\n",
        f"{_quote(PGBOUNCER_ADMIN)} {_quote(stable_verifier(PGBOUNCER_ADMIN, admin_password))}\n",
    ]
    if monitor_password is not None:
        lines.append(f"{_quote(MONITORING_ROLE)} {_quote(stable_verifier(MONITORING_ROLE, monitor_password))}\n")
    return "".join(lines)


# Where the PgBouncer container reads its files (its config directory, written by components.pgbouncer).
INI_FILE = f"{PGBOUNCER_CONFIG_DIR}/pgbouncer.ini"
HBA_FILE = f"{PGBOUNCER_CONFIG_DIR}/pgbouncer_hba.conf"
AUTH_FILE = f"{PGBOUNCER_CONFIG_DIR}/userlist.txt"
CONTAINER_TLS = PgBouncerTls(
    f"{PGBOUNCER_CONFIG_DIR}/ca.crt", f"{PGBOUNCER_CONFIG_DIR}/server.crt", f"{PGBOUNCER_CONFIG_DIR}/server.key"
)
