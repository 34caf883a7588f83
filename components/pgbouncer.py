"""PgBouncer: the pooler container, with the config, HBA and auth file this program renders."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

import pulumi
import pulumi_docker as docker

from components.postgres import Placement, Publish, ServerTls
from postgres_platform.model.names import COMPONENT_LABEL, PGBOUNCER_PORT, PGBOUNCER_UID
from postgres_platform.passwords import generated_password
from postgres_platform.render.pgbouncer import AUTH_FILE, CONTAINER_TLS, HBA_FILE, INI_FILE, render_auth_file


@dataclass(frozen=True)
class PgBouncerArgs:
    image: str  # the literal reference, as for Postgres
    ini: str  # render.pgbouncer.render_ini, with the container's paths
    hba: str  # render.pgbouncer.render_hba
    auth_password: pulumi.Input[str]  # the auth role's (secret)
    placement: Placement
    publish: Publish | None = None
    tls: ServerTls | None = None  # the host's certificate, offered to clients
    ca_cert_pem: pulumi.Input[str] | None = None  # to verify Postgres
    depends_on: Sequence[pulumi.Resource] = ()


class PgBouncer(pulumi.ComponentResource):
    admin_password: pulumi.Output[str]

    def __init__(self, name: str, args: PgBouncerArgs, opts: pulumi.ResourceOptions | None = None) -> None:
        super().__init__("postgres-platform:index:PgBouncer", name, None, opts)
        self.admin_password = generated_password(f"{name}-admin-password", self)
        # Fixed per stack so the verifier (and the container) only change when the password does.
        admin_salt = generated_password(f"{name}-admin-salt", self, length=16)
        auth_file: pulumi.Output[str] = pulumi.Output.secret(
            pulumi.Output.all(args.auth_password, self.admin_password, admin_salt).apply(
                lambda values: render_auth_file(values[0], values[1], values[2].encode())
            )
        )
        uploads = [
            docker.ContainerUploadArgs(file=INI_FILE, content=args.ini, owner=PGBOUNCER_UID),
            docker.ContainerUploadArgs(file=HBA_FILE, content=args.hba, owner=PGBOUNCER_UID),
            docker.ContainerUploadArgs(file=AUTH_FILE, content=auth_file, owner=PGBOUNCER_UID, permissions="0600"),
        ]
        if args.tls is not None:
            uploads += [
                docker.ContainerUploadArgs(file=CONTAINER_TLS.ca_file, content=args.ca_cert_pem, owner=PGBOUNCER_UID),
                docker.ContainerUploadArgs(
                    file=CONTAINER_TLS.cert_file, content=args.tls.cert_pem, owner=PGBOUNCER_UID
                ),
                docker.ContainerUploadArgs(
                    file=CONTAINER_TLS.key_file, content=args.tls.key_pem, owner=PGBOUNCER_UID, permissions="0600"
                ),
            ]
        image = docker.RemoteImage(
            f"{name}-image", name=args.image, keep_locally=True, opts=args.placement.options(self, [])
        )
        docker.Container(
            f"{name}-container",
            name=f"postgres-platform-{pulumi.get_stack()}-pgbouncer",
            image=args.image,  # literal, as in PostgresContainer; pulled by `image` first
            # Run the binary on our files directly: the image's entrypoint would write its own config.
            entrypoints=["pgbouncer"],
            command=[INI_FILE],
            user=PGBOUNCER_UID,
            uploads=uploads,
            labels=[docker.ContainerLabelArgs(label=COMPONENT_LABEL, value="pgbouncer")],
            restart="unless-stopped",
            **args.placement.container_args("pgbouncer", args.publish, PGBOUNCER_PORT),
            opts=args.placement.options(self, [image, *args.depends_on]),
        )
        self.register_outputs({})
