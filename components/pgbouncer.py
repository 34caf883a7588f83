"""PgBouncer: the pooler container, reading the config, HBA and auth file this program renders.

The files live in a config directory on the host (ConfigFiles); a change is a SIGHUP (PgBouncer's
RELOAD), never a new container. The container itself changes only with its image or address, and
then stops with SIGINT: PgBouncer's safe shutdown, which lets running transactions finish.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path

import pulumi
import pulumi_docker as docker

from components.config_files import ConfigFileArgs, ConfigFiles, ConfigFilesArgs, HostShell
from components.postgres import Placement, Publish, ServerTls
from postgres_platform.model import names
from postgres_platform.model.names import COMPONENT_LABEL, PGBOUNCER_CONFIG_DIR, PGBOUNCER_PORT, PGBOUNCER_UID
from postgres_platform.passwords import generated_password
from postgres_platform.render.files import reload_if_running
from postgres_platform.render.pgbouncer import AUTH_FILE, CONTAINER_TLS, HBA_FILE, INI_FILE, render_auth_file

STOP_GRACE_SECONDS = 60


@dataclass(frozen=True)
class PgBouncerArgs:
    image: str  # the literal reference, as for Postgres
    ini: str  # render.pgbouncer.render_ini, with the container's paths
    hba: str  # render.pgbouncer.render_hba
    auth_password: pulumi.Input[str]  # the auth role's (secret)
    placement: Placement
    shell: HostShell  # where its config directory is written
    publish: Publish | None = None
    tls: ServerTls | None = None  # the host's certificate, offered to clients
    ca_cert_pem: pulumi.Input[str] | None = None  # to verify Postgres
    depends_on: Sequence[pulumi.Resource] = ()


class PgBouncer(pulumi.ComponentResource):
    admin_password: pulumi.Output[str]

    def __init__(self, name: str, args: PgBouncerArgs, opts: pulumi.ResourceOptions | None = None) -> None:
        super().__init__("postgres-platform:index:PgBouncer", name, None, opts)
        self.admin_password = generated_password(f"{name}-admin-password", self)
        auth_file = pulumi.Output.all(args.auth_password, self.admin_password).apply(
            lambda values: render_auth_file(values[0], values[1])
        )
        files = [
            ConfigFileArgs(Path(INI_FILE).name, "0644", args.ini),
            ConfigFileArgs(Path(HBA_FILE).name, "0644", args.hba),
            ConfigFileArgs(Path(AUTH_FILE).name, "0600", auth_file),
        ]
        if args.tls is not None:
            files += [
                ConfigFileArgs(Path(CONTAINER_TLS.ca_file).name, "0644", args.ca_cert_pem or ""),
                ConfigFileArgs(Path(CONTAINER_TLS.cert_file).name, "0644", args.tls.cert_pem),
                ConfigFileArgs(Path(CONTAINER_TLS.key_file).name, "0600", args.tls.key_pem),
            ]
        container_name = names.container_name(pulumi.get_stack(), "pgbouncer")
        config = ConfigFiles(
            f"{name}-config",
            ConfigFilesArgs(args.shell, "pgbouncer", PGBOUNCER_UID, files, reload_if_running(container_name)),
            opts=pulumi.ResourceOptions(parent=self),
        )
        image = docker.RemoteImage(
            f"{name}-image", name=args.image, keep_locally=True, opts=args.placement.options(self, [])
        )
        docker.Container(
            f"{name}-container",
            name=container_name,
            image=args.image,  # literal, as in PostgresContainer; pulled by `image` first
            # Run the binary on our files directly: the image's entrypoint would write its own config.
            entrypoints=["pgbouncer"],
            command=[INI_FILE],
            user=PGBOUNCER_UID,
            mounts=[
                docker.ContainerMountArgs(target=PGBOUNCER_CONFIG_DIR, source=config.path, type="bind", read_only=True)
            ],
            labels=[docker.ContainerLabelArgs(label=COMPONENT_LABEL, value="pgbouncer")],
            restart="unless-stopped",
            stop_signal="SIGINT",
            stop_timeout=STOP_GRACE_SECONDS,
            destroy_grace_seconds=STOP_GRACE_SECONDS,
            **args.placement.container_args("pgbouncer", args.publish, PGBOUNCER_PORT),
            opts=args.placement.options(self, [image, config.written, *args.depends_on]).merge(
                pulumi.ResourceOptions(delete_before_replace=True)
            ),
        )
        self.register_outputs({})
