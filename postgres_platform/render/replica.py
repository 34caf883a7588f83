"""A streaming standby's settings and its one-time base backup script (pure)."""

from __future__ import annotations

import shlex

from postgres_platform.model.config import SettingValue
from postgres_platform.model.names import POSTGRES_CONFIG_DIR, POSTGRES_PORT, POSTGRES_UID, REPLICATION_ROLE
from postgres_platform.render.backup import CONFIG_DIR, restore_command
from postgres_platform.render.hetzner import DATA_DIR, DATA_MOUNT

SLOT = "replica_1"
PASSFILE = f"{POSTGRES_CONFIG_DIR}/replication.pgpass"
CA_FILE = f"{POSTGRES_CONFIG_DIR}/ca.crt"


def standby_settings(primary_ip: str) -> dict[str, SettingValue]:
    conninfo = (
        f"host={primary_ip} port={POSTGRES_PORT} user={REPLICATION_ROLE} sslmode=verify-full "
        f"sslrootcert={CA_FILE} passfile={PASSFILE} application_name={SLOT}"
    )
    return {"primary_conninfo": conninfo, "primary_slot_name": SLOT, "hot_standby": True}


def passfile(primary_ip: str, password: str) -> str:
    return f"{primary_ip}:{POSTGRES_PORT}:replication:{REPLICATION_ROLE}:{password}\n"


def bootstrap_script(image: str, primary_ip: str, backup_config_dir: str | None = None) -> str:
    """Reads the replication password (line 1) and the CA (the rest) from stdin; copies only once.

    With backups (`backup_config_dir`: the host's pgBackRest config directory) the copy is restored from
    the repository (--type=standby: it writes standby.signal and a restore_command) and the primary is
    spared a base backup; without, pg_basebackup from the primary.
    """
    if backup_config_dir is not None:
        restore = shlex.join(restore_command(DATA_DIR, standby=True))
        copy = f"""  docker run --rm --network host --user {POSTGRES_UID} -v {backup_config_dir}:{CONFIG_DIR}:ro \\
    -v {DATA_MOUNT}:{DATA_MOUNT} {image} {restore}"""
    else:
        copy = f"""  docker run --rm --network host --user {POSTGRES_UID} -e PGPASSWORD -v {DATA_MOUNT}:{DATA_MOUNT} \\
    {image} pg_basebackup -d "host={primary_ip} port={POSTGRES_PORT} user={REPLICATION_ROLE} sslmode=verify-full \\
sslrootcert={DATA_MOUNT}/ca.crt" -D {DATA_DIR} -S {SLOT} -X stream -c fast
  touch {DATA_DIR}/standby.signal
  chown {POSTGRES_UID}:{POSTGRES_UID} {DATA_DIR}/standby.signal"""
    return f"""set -eu
read -r PGPASSWORD
export PGPASSWORD
cat > {DATA_MOUNT}/ca.crt
if [ ! -s {DATA_DIR}/PG_VERSION ]; then
  install -d -o {POSTGRES_UID} -g {POSTGRES_UID} -m 700 {DATA_DIR}
{copy}
fi
"""
