"""The Postgres server's command line and settings (pure): what the container runs and the policy reads."""

from __future__ import annotations

from postgres_platform.model.config import PlatformConfig, SettingValue
from postgres_platform.model.names import POSTGRES_CONFIG_DIR

HBA_FILE = f"{POSTGRES_CONFIG_DIR}/pg_hba.conf"
CERT_FILE = f"{POSTGRES_CONFIG_DIR}/server.crt"
KEY_FILE = f"{POSTGRES_CONFIG_DIR}/server.key"


def _setting(value: SettingValue) -> str:
    if isinstance(value, bool):
        return "on" if value else "off"
    return str(value)


def server_arguments(config: PlatformConfig, extra: dict[str, SettingValue] | None = None) -> list[str]:
    """`postgres -c name=value ...`: the budget's two numbers first, where the policy reads them.

    Only literals: the connection-budget policy reads this list at preview.
    """
    pg = config.postgres
    settings: dict[str, SettingValue] = {
        "max_connections": pg.max_connections,
        "superuser_reserved_connections": pg.superuser_reserved_connections,
        "password_encryption": "scram-sha-256",
        **pg.settings,
        **(extra or {}),
    }
    args = ["postgres"]
    for name, value in settings.items():
        args += ["-c", f"{name}={_setting(value)}"]
    return args


def tls_and_hba_settings() -> dict[str, SettingValue]:
    """A server on a host network: TLS 1.2+ only and our pg_hba.conf, listening on the host's interfaces."""
    return {
        "listen_addresses": "*",
        "hba_file": HBA_FILE,
        "ssl": True,
        "ssl_cert_file": CERT_FILE,
        "ssl_key_file": KEY_FILE,
        "ssl_min_protocol_version": "TLSv1.2",
    }
