"""StreamingReplica: a standby on its own host, fed by a physical slot on the primary.

Bootstrap: once, when the replica's data directory is empty, the data is restored from the backup
repository (`pgbackrest --type=standby`, with backups) or copied from the primary by `pg_basebackup` (over
TLS verified against the stack CA). The replica container then starts as a standby: `primary_conninfo`
names a password file in its config directory, so no password is in its command line.
"""

from __future__ import annotations

import dataclasses
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path

import pulumi
import pulumi_command as command
import pulumi_docker as docker
import pulumi_postgresql as postgresql

from components.hetzner import DatabaseHost
from components.postgres import PostgresContainer, PostgresContainerArgs
from components.resources.passwords import generated_password
from postgres_platform.model.names import REPLICATION_ROLE
from postgres_platform.render.files import File
from postgres_platform.render.replica import CA_FILE, PASSFILE, SLOT, bootstrap_script, passfile
from postgres_platform.render.scram import stable_verifier

REPLICATION_CONNECTION_LIMIT = 2  # walsenders: counted in max_wal_senders, not in max_connections


@dataclass(frozen=True)
class StreamingReplicaArgs:
    container: PostgresContainerArgs  # the standby's, on `host`: image, standby command, data, TLS and HBA
    host: DatabaseHost
    primary_ip: str
    primary_provider: postgresql.Provider
    primary: pulumi.Resource
    ca_cert_pem: pulumi.Input[str]
    # With backups: the host's pgBackRest config directory; the copy is then restored from the
    # repository, after `after` (the primary's stanza step, which makes sure a full backup exists).
    backup_config_dir: str | None = None
    after: Sequence[pulumi.Resource] = ()


class StreamingReplica(pulumi.ComponentResource):
    container: docker.Container

    def __init__(self, name: str, args: StreamingReplicaArgs, opts: pulumi.ResourceOptions | None = None) -> None:
        super().__init__("postgres-platform:index:StreamingReplica", name, None, opts)
        on_primary = pulumi.ResourceOptions(parent=self, provider=args.primary_provider, depends_on=[args.primary])
        secret = generated_password(f"{name}-replication-password", self)
        role = postgresql.Role(
            f"{name}-replication-role",
            name=REPLICATION_ROLE,
            login=True,
            replication=True,
            password=secret.apply(lambda pw: stable_verifier(REPLICATION_ROLE, pw)),  # as app roles: no plaintext
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
            connection=command.remote.ConnectionArgs(host=args.host.public_ip, user="root"),
            create=bootstrap_script(args.container.spec.image, args.primary_ip, args.backup_config_dir),
            stdin=pulumi.Output.all(secret, args.ca_cert_pem).apply(lambda v: f"{v[0]}\n{v[1]}"),  # secret via `secret`
            opts=pulumi.ResourceOptions(parent=self, depends_on=[role, slot, args.host, *args.after]),
        )
        files = [
            File(Path(CA_FILE).name, "0644", args.ca_cert_pem),
            File(Path(PASSFILE).name, "0600", secret.apply(lambda pw: passfile(args.primary_ip, pw))),
        ]
        server = PostgresContainer(
            name,
            dataclasses.replace(
                args.container,
                files=[*args.container.files, *files],
                depends_on=[*args.container.depends_on, bootstrap],
            ),
            opts=pulumi.ResourceOptions(parent=self),
        )
        self.container = server.container
        self.register_outputs({})
