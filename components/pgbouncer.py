"""PgBouncer: the pooler container, with the config, HBA and auth file this program renders."""

from __future__ import annotations

import pulumi
import pulumi_docker as docker
import pulumi_random as random

from components.config import PlatformConfig
from components.names import COMPONENT_LABEL
from components.pgbouncer_config import Endpoints, PgBouncerTls, render_auth_file, render_hba, render_ini
from components.postgres import POSTGRES_PORT, Placement, Publish, ServerTls

PGBOUNCER_PORT = 6432
CONFIG_DIR = "/etc/pgbouncer"
PGBOUNCER_UID = "70"  # the image's unprivileged `postgres` user (Alpine); PgBouncer refuses root
FILE_TLS = PgBouncerTls(f"{CONFIG_DIR}/ca.crt", f"{CONFIG_DIR}/server.crt", f"{CONFIG_DIR}/server.key")


class PgBouncer(pulumi.ComponentResource):
    admin_password: pulumi.Output[str]

    def __init__(
        self,
        name: str,
        config: PlatformConfig,
        *,
        placement: Placement,
        listen_addr: str,  # inside a bridge container 0.0.0.0 (published on loopback); on a host, its private IP
        postgres_host: pulumi.Input[str],
        auth_password: pulumi.Input[str],
        publish: Publish | None = None,
        tls: ServerTls | None = None,
        ca_cert_pem: pulumi.Input[str] | None = None,
        depends_on: list[pulumi.Resource] | None = None,
        opts: pulumi.ResourceOptions | None = None,
    ) -> None:
        super().__init__("postgres-platform:index:PgBouncer", name, None, opts)
        child = pulumi.ResourceOptions(parent=self)
        admin_password = random.RandomPassword(f"{name}-admin-password", length=32, special=False, opts=child)
        # Fixed per stack so the verifier (and the container) only change when the password does.
        admin_salt = random.RandomPassword(f"{name}-admin-salt", length=16, special=False, opts=child)
        self.admin_password = pulumi.Output.secret(admin_password.result)
        ini = pulumi.Output.from_input(postgres_host).apply(
            lambda host: render_ini(
                config,
                Endpoints(
                    listen_addr=listen_addr,
                    listen_port=PGBOUNCER_PORT,
                    server_host=host,
                    server_port=POSTGRES_PORT,
                    auth_file=f"{CONFIG_DIR}/userlist.txt",
                    hba_file=f"{CONFIG_DIR}/pgbouncer_hba.conf",
                    tls=FILE_TLS if tls is not None else None,
                ),
            )
        )
        auth_file: pulumi.Output[str] = pulumi.Output.secret(
            pulumi.Output.all(auth_password, self.admin_password, admin_salt.result).apply(
                lambda values: render_auth_file(values[0], values[1], values[2].encode())
            )
        )
        uploads = [
            docker.ContainerUploadArgs(file=f"{CONFIG_DIR}/pgbouncer.ini", content=ini, owner=PGBOUNCER_UID),
            docker.ContainerUploadArgs(
                file=f"{CONFIG_DIR}/pgbouncer_hba.conf", content=render_hba(config), owner=PGBOUNCER_UID
            ),
            docker.ContainerUploadArgs(
                file=f"{CONFIG_DIR}/userlist.txt", content=auth_file, owner=PGBOUNCER_UID, permissions="0600"
            ),
        ]
        if tls is not None:
            uploads += [
                docker.ContainerUploadArgs(file=FILE_TLS.ca_file, content=ca_cert_pem, owner=PGBOUNCER_UID),
                docker.ContainerUploadArgs(file=FILE_TLS.cert_file, content=tls.cert_pem, owner=PGBOUNCER_UID),
                docker.ContainerUploadArgs(
                    file=FILE_TLS.key_file, content=tls.key_pem, owner=PGBOUNCER_UID, permissions="0600"
                ),
            ]
        image = docker.RemoteImage(
            f"{name}-image", name=config.pgbouncer.image, keep_locally=True, opts=placement.options(self, [])
        )
        docker.Container(
            f"{name}-container",
            name=f"postgres-platform-{pulumi.get_stack()}-pgbouncer",
            image=config.pgbouncer.image,  # literal, as in PostgresContainer; pulled by `image` first
            # Run the binary on our files directly: the image's entrypoint would write its own config.
            entrypoints=["pgbouncer"],
            command=[f"{CONFIG_DIR}/pgbouncer.ini"],
            user=PGBOUNCER_UID,
            uploads=uploads,
            labels=[docker.ContainerLabelArgs(label=COMPONENT_LABEL, value="pgbouncer")],
            restart="unless-stopped",
            **placement.container_args("pgbouncer", publish, PGBOUNCER_PORT),
            opts=placement.options(self, [image, *(depends_on or [])]),
        )
        self.register_outputs({})
