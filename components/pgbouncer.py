"""PgBouncer: its container, reading the config, HBA and auth file this program renders.

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

from components.config_files import ConfigFiles, ConfigFilesArgs, HostShell
from components.resources.containers import Placement, Publish, container_image, container_settings
from components.resources.passwords import generated_password
from components.tls import ServerTls
from postgres_platform.model.config import PlatformConfig
from postgres_platform.model.names import PGBOUNCER_PORT, PGBOUNCER_UID
from postgres_platform.render.containers import CONFIG, MountSource, pgbouncer_container
from postgres_platform.render.files import File, reload_if_running
from postgres_platform.render.pgbouncer import AUTH_FILE, CONTAINER_TLS, HBA_FILE, INI_FILE, render_auth_file


@dataclass(frozen=True)
class PgBouncerArgs:
    config: PlatformConfig  # its image, limits and the base the image is built FROM
    ini: str  # render.pgbouncer.render_ini, with the container's paths
    hba: str  # render.pgbouncer.render_hba
    auth_password: pulumi.Input[str]  # the auth role's (secret)
    placement: Placement
    shell: HostShell  # where its config directory is written
    publish: Publish | None = None
    tls: ServerTls | None = None  # the host's certificate, offered to clients
    ca_cert_pem: pulumi.Input[str] | None = None  # to verify Postgres
    depends_on: Sequence[pulumi.Resource] = ()
    monitor_password: pulumi.Input[str] | None = None  # the monitoring role's (secret): a console stats user


class PgBouncer(pulumi.ComponentResource):
    admin_password: pulumi.Output[str]

    def __init__(self, name: str, args: PgBouncerArgs, opts: pulumi.ResourceOptions | None = None) -> None:
        super().__init__("postgres-platform:index:PgBouncer", name, None, opts)
        self.admin_password = generated_password(f"{name}-admin-password", self)
        auth_file = pulumi.Output.all(args.auth_password, self.admin_password, args.monitor_password).apply(
            lambda values: render_auth_file(values[0], values[1], values[2])
        )
        files: list[File[pulumi.Input[str]]] = [
            File(Path(INI_FILE).name, "0644", args.ini),
            File(Path(HBA_FILE).name, "0644", args.hba),
            File(Path(AUTH_FILE).name, "0600", auth_file),
        ]
        if args.tls is not None:
            files += [
                File(Path(CONTAINER_TLS.ca_file).name, "0644", args.ca_cert_pem or ""),
                File(Path(CONTAINER_TLS.cert_file).name, "0644", args.tls.cert_pem),
                File(Path(CONTAINER_TLS.key_file).name, "0600", args.tls.key_pem),
            ]
        spec = pgbouncer_container(pulumi.get_stack(), args.config)
        config = ConfigFiles(
            f"{name}-config",
            ConfigFilesArgs(args.shell, "pgbouncer", PGBOUNCER_UID, files, reload_if_running(spec.name)),
            opts=pulumi.ResourceOptions(parent=self),
        )
        image = container_image(
            f"{name}-image", spec.image, args.config.image_base, args.placement.options(self, []), args.depends_on
        )
        docker.Container(
            f"{name}-container",
            **container_settings(spec, {CONFIG: MountSource(config.path)}),
            **args.placement.network("pgbouncer", args.publish, PGBOUNCER_PORT),
            opts=args.placement.options(self, [image, config.written, *args.depends_on]).merge(
                pulumi.ResourceOptions(delete_before_replace=True)
            ),
        )
        self.register_outputs({})
