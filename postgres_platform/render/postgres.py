"""The Postgres server's settings (pure): a command line for what needs a restart, a file for the rest.

A change to a reloadable setting rewrites postgresql.conf and reloads (no app notices); only a change
to a setting Postgres reads at start changes the container's command, which replaces the container
(a graceful restart). The budget's two numbers stay on the command line, where the policy reads them.
"""

from __future__ import annotations

from postgres_platform.model.config import PlatformConfig, SettingValue
from postgres_platform.model.names import POSTGRES_CONFIG_DIR
from postgres_platform.model.settings import restart_settings

CONFIG_FILE = f"{POSTGRES_CONFIG_DIR}/postgresql.conf"
HBA_FILE = f"{POSTGRES_CONFIG_DIR}/pg_hba.conf"
CERT_FILE = f"{POSTGRES_CONFIG_DIR}/server.crt"
KEY_FILE = f"{POSTGRES_CONFIG_DIR}/server.key"
# POSTGRES_PASSWORD_FILE, read at initdb only: the superuser's SCRAM verifier (initdb stores it as is).
PASSWORD_FILE = f"{POSTGRES_CONFIG_DIR}/superuser.password"
SUPERUSER_SQL = f"{POSTGRES_CONFIG_DIR}/superuser.sql"  # ALTER ROLE with the verifier: how a new password lands

# Settings of context `postmaster` in the shipped server's pg_settings: read at start only. Everything
# else takes effect on reload.
RESTART_SETTINGS = restart_settings()


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


# A server replaying another's WAL (a restored copy, a standby) refuses to start below the settings the
# WAL was written under ("recovery aborted because of insufficient parameter settings").
RECOVERY_MINIMUMS = (
    "max_connections",
    "max_worker_processes",
    "max_wal_senders",
    "max_prepared_transactions",
    "max_locks_per_transaction",
)


def copy_arguments(config: PlatformConfig) -> list[str]:
    """`-c name=value` for the settings a restored copy must hold at least as high as the server's."""
    settings = server_settings(config)
    return [
        arg for name in RECOVERY_MINIMUMS if name in settings for arg in ("-c", f"{name}={_setting(settings[name])}")
    ]


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
