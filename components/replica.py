"""StreamingReplica: a standby on its own host, fed by a physical slot on the primary.

Bootstrap: once, when the replica's data directory is empty, `pg_basebackup` (run in the Postgres image
on the replica host, over TLS verified against the stack CA) copies the primary into the volume. The
replica container then starts as a standby: `primary_conninfo` names a password file uploaded into it,
so no password is in its command line.
"""

from __future__ import annotations

import pulumi
import pulumi_command as command
import pulumi_docker as docker
import pulumi_postgresql as postgresql
import pulumi_random as random

from components.config import PlatformConfig
from components.hetzner import DATA_MOUNT, DatabaseHost
from components.names import REPLICATION_ROLE
from components.postgres import CONFIG_DIR, POSTGRES_PORT, POSTGRES_UID, Placement, PostgresContainer, ServerTls

SLOT = "replica_1"
REPLICATION_CONNECTION_LIMIT = 2  # walsenders: counted in max_wal_senders, not in max_connections
PASSFILE = f"{CONFIG_DIR}/replication.pgpass"
CA_FILE = f"{CONFIG_DIR}/ca.crt"


def standby_settings(primary_ip: str) -> dict[str, str | int | float | bool]:
    conninfo = (
        f"host={primary_ip} port={POSTGRES_PORT} user={REPLICATION_ROLE} sslmode=verify-full "
        f"sslrootcert={CA_FILE} passfile={PASSFILE} application_name={SLOT}"
    )
    return {"primary_conninfo": conninfo, "primary_slot_name": SLOT, "hot_standby": True}


def bootstrap_script(image: str, primary_ip: str) -> str:
    """Reads the replication password (line 1) and the CA (the rest) from stdin; copies only once."""
    data = f"{DATA_MOUNT}/data"
    return f"""set -eu
read -r PGPASSWORD
export PGPASSWORD
cat > {DATA_MOUNT}/ca.crt
if [ ! -s {data}/PG_VERSION ]; then
  install -d -o {POSTGRES_UID} -g {POSTGRES_UID} -m 700 {data}
  docker run --rm --network host --user {POSTGRES_UID} -e PGPASSWORD -v {DATA_MOUNT}:{DATA_MOUNT} {image} \\
    pg_basebackup -d "host={primary_ip} port={POSTGRES_PORT} user={REPLICATION_ROLE} sslmode=verify-full \\
sslrootcert={DATA_MOUNT}/ca.crt" -D {data} -S {SLOT} -X stream -c fast
  touch {data}/standby.signal
  chown {POSTGRES_UID}:{POSTGRES_UID} {data}/standby.signal
fi
"""


class StreamingReplica(pulumi.ComponentResource):
    container: docker.Container

    def __init__(
        self,
        name: str,
        config: PlatformConfig,
        *,
        host: DatabaseHost,
        primary_ip: str,
        primary_provider: postgresql.Provider,
        primary: pulumi.Resource,
        ca_cert_pem: pulumi.Input[str],
        tls: ServerTls,
        hba: str,
        opts: pulumi.ResourceOptions | None = None,
    ) -> None:
        super().__init__("postgres-platform:index:StreamingReplica", name, None, opts)
        on_primary = pulumi.ResourceOptions(parent=self, provider=primary_provider, depends_on=[primary])
        password = random.RandomPassword(
            f"{name}-replication-password", length=32, special=False, opts=pulumi.ResourceOptions(parent=self)
        )
        secret: pulumi.Output[str] = pulumi.Output.secret(password.result)
        role = postgresql.Role(
            f"{name}-replication-role",
            name=REPLICATION_ROLE,
            login=True,
            replication=True,
            password=secret,
            connection_limit=REPLICATION_CONNECTION_LIMIT,
            superuser=False,
            create_database=False,
            create_role=False,
            bypass_row_level_security=False,
            opts=on_primary,
        )
        slot = postgresql.PhysicalReplicationSlot(f"{name}-slot", name=SLOT, opts=on_primary)
        bootstrap = command.remote.Command(
            f"{name}-basebackup",
            connection=command.remote.ConnectionArgs(host=host.public_ip, user="root"),
            create=bootstrap_script(config.postgres.image, primary_ip),
            stdin=pulumi.Output.all(secret, ca_cert_pem).apply(lambda v: f"{v[0]}\n{v[1]}"),  # secret via `secret`
            opts=pulumi.ResourceOptions(parent=self, depends_on=[role, slot, host]),
        )
        passfile = secret.apply(lambda pw: f"{primary_ip}:{POSTGRES_PORT}:replication:{REPLICATION_ROLE}:{pw}\n")
        server = PostgresContainer(
            name,
            config,
            placement=Placement(docker_provider=host.docker_provider),
            data=docker.ContainerVolumeArgs(host_path=f"{DATA_MOUNT}/data", container_path="/var/lib/postgresql/data"),
            label="postgres-replica",
            tls=tls,
            hba=hba,
            extra_settings=standby_settings(primary_ip),
            extra_uploads=[
                docker.ContainerUploadArgs(file=CA_FILE, content=ca_cert_pem, owner=POSTGRES_UID),
                docker.ContainerUploadArgs(
                    file=PASSFILE,
                    content=passfile,
                    owner=POSTGRES_UID,
                    permissions="0600",  # secret via `secret`
                ),
            ],
            depends_on=[bootstrap],
            opts=pulumi.ResourceOptions(parent=self),
        )
        self.container = server.container
        self.register_outputs({})
