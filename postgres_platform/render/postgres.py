"""The Postgres server's settings (pure): a command line for what needs a restart, a file for the rest.

A change to a reloadable setting rewrites postgresql.conf and reloads (no app notices); only a change
to a setting Postgres reads at start changes the container's command, which replaces the container
(a graceful restart). The budget's two numbers stay on the command line, where the policy reads them.
"""

from __future__ import annotations

from postgres_platform.model.config import PlatformConfig, SettingValue
from postgres_platform.model.names import POSTGRES_CONFIG_DIR

CONFIG_FILE = f"{POSTGRES_CONFIG_DIR}/postgresql.conf"
HBA_FILE = f"{POSTGRES_CONFIG_DIR}/pg_hba.conf"
CERT_FILE = f"{POSTGRES_CONFIG_DIR}/server.crt"
KEY_FILE = f"{POSTGRES_CONFIG_DIR}/server.key"
PASSWORD_FILE = f"{POSTGRES_CONFIG_DIR}/superuser.password"  # POSTGRES_PASSWORD_FILE: read at initdb only
SUPERUSER_SQL = f"{POSTGRES_CONFIG_DIR}/superuser.sql"  # ALTER ROLE with the verifier: how a new password lands

# Settings of context `postmaster`: read at server start only: exactly PostgreSQL 17's pg_settings
# (the shipped server; tests/test_real_server.py compares them). Everything else takes effect on reload.
RESTART_SETTINGS = frozenset(
    {
        "archive_mode",
        "autovacuum_freeze_max_age",
        "autovacuum_max_workers",
        "autovacuum_multixact_freeze_max_age",
        "bonjour",
        "bonjour_name",
        "cluster_name",
        "commit_timestamp_buffers",
        "config_file",
        "data_directory",
        "data_sync_retry",
        "debug_io_direct",
        "dynamic_shared_memory_type",
        "event_source",
        "external_pid_file",
        "hba_file",
        "hot_standby",
        "huge_page_size",
        "huge_pages",
        "ident_file",
        "ignore_invalid_pages",
        "jit_provider",
        "listen_addresses",
        "logging_collector",
        "max_connections",
        "max_files_per_process",
        "max_locks_per_transaction",
        "max_logical_replication_workers",
        "max_notify_queue_pages",
        "max_pred_locks_per_transaction",
        "max_prepared_transactions",
        "max_replication_slots",
        "max_wal_senders",
        "max_worker_processes",
        "min_dynamic_shared_memory",
        "multixact_member_buffers",
        "multixact_offset_buffers",
        "notify_buffers",
        "port",
        "recovery_target",
        "recovery_target_action",
        "recovery_target_inclusive",
        "recovery_target_lsn",
        "recovery_target_name",
        "recovery_target_time",
        "recovery_target_timeline",
        "recovery_target_xid",
        "reserved_connections",
        "serializable_buffers",
        "shared_buffers",
        "shared_memory_type",
        "shared_preload_libraries",
        "subtransaction_buffers",
        "superuser_reserved_connections",
        "trace_connection_negotiation",
        "track_activity_query_size",
        "track_commit_timestamp",
        "transaction_buffers",
        "unix_socket_directories",
        "unix_socket_group",
        "unix_socket_permissions",
        "wal_buffers",
        "wal_decode_buffer_size",
        "wal_level",
        "wal_log_hints",
    }
)


def _setting(value: SettingValue) -> str:
    if isinstance(value, bool):
        return "on" if value else "off"
    return str(value)


def server_settings(config: PlatformConfig, extra: dict[str, SettingValue] | None = None) -> dict[str, SettingValue]:
    """Every setting the server gets, the budget's two first."""
    pg = config.postgres
    return {
        "max_connections": pg.max_connections,
        "superuser_reserved_connections": pg.superuser_reserved_connections,
        # Inside its container (local: published on loopback only; a host: pg_hba and the firewall guard it).
        "listen_addresses": "*",
        "password_encryption": "scram-sha-256",
        **pg.settings,
        **(extra or {}),
    }


def needs_restart(name: str) -> bool:
    return name in RESTART_SETTINGS


def server_arguments(config: PlatformConfig, extra: dict[str, SettingValue] | None = None) -> list[str]:
    """`postgres -c config_file=... -c name=value ...` for the settings read at start only.

    Only literals: the connection-budget policy reads this list at preview.
    """
    args = ["postgres", "-c", f"config_file={CONFIG_FILE}"]
    for name, value in server_settings(config, extra).items():
        if needs_restart(name):
            args += ["-c", f"{name}={_setting(value)}"]
    return args


def render_config_file(config: PlatformConfig, extra: dict[str, SettingValue] | None = None) -> str:
    """postgresql.conf with the reloadable settings; the server rereads it on reload (SIGHUP)."""
    lines = ["# postgres-platform: reloadable settings (those read at start only are on the command line)"]
    for name, value in server_settings(config, extra).items():
        if not needs_restart(name):
            lines.append(f"{name} = '{_setting(value).replace(chr(39), chr(39) * 2)}'")
    return "\n".join(lines) + "\n"


def tls_and_hba_settings() -> dict[str, SettingValue]:
    """A server on a host network: TLS 1.2+ only and our pg_hba.conf."""
    return {
        "hba_file": HBA_FILE,
        "ssl": True,
        "ssl_cert_file": CERT_FILE,
        "ssl_key_file": KEY_FILE,
        "ssl_min_protocol_version": "TLSv1.2",
    }
