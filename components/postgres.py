"""PostgresContainer (a primary or a standby) and PostgresServer (the primary, its superuser and provider);
how any container of a ContainerSpec is declared and where its image comes from.

A `Placement` says where containers run: on the local Docker's bridge network with ports published
on loopback, or on a Hetzner host's own network (firewall and pg_hba guard it).
"""

from __future__ import annotations

import dataclasses
import shlex
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path

import pulumi
import pulumi_docker as docker
import pulumi_postgresql as postgresql

from components.config_files import ConfigFiles, ConfigFilesArgs, HostShell
from components.resources.admin import AdminAddress, AdminConnection, admin_provider
from components.resources.containers import Placement, Publish, container_image, container_settings
from components.resources.passwords import generated_password
from components.tls import ServerTls
from postgres_platform.model.names import POSTGRES_PORT, POSTGRES_UID, SUPERUSER
from postgres_platform.render import sql
from postgres_platform.render.containers import CONFIG, ContainerSpec, MountSource, exec_argv, postgres_healthcheck
from postgres_platform.render.files import File, reload_if_running
from postgres_platform.render.postgres import CERT_FILE, CONFIG_FILE, HBA_FILE, KEY_FILE, PASSWORD_FILE, SUPERUSER_SQL
from postgres_platform.render.scram import stable_verifier


def server_files(hba: str | None, tls: ServerTls | None) -> list[File[pulumi.Input[str]]]:
    """Our pg_hba.conf and the server's certificate and key, where render.postgres's settings name them."""
    files: list[File[pulumi.Input[str]]] = []
    if hba is not None:
        files.append(File(Path(HBA_FILE).name, "0644", hba))
    if tls is not None:
        files += [
            File(Path(CERT_FILE).name, "0644", tls.cert_pem),
            File(Path(KEY_FILE).name, "0600", tls.key_pem),
        ]
    return files


@dataclass(frozen=True)
class PostgresContainerArgs:
    spec: ContainerSpec  # render.containers.postgres_container: image, command, env, mount points
    config_file: str  # render.postgres.render_config_file: the reloadable settings
    image_base: str  # FROM what the image is built (the stack's imageBase)
    placement: Placement
    shell: HostShell  # where its config directory is written
    sources: Mapping[str, MountSource[pulumi.Input[str]]]  # every mount but CONFIG (this component's)
    files: Sequence[File[pulumi.Input[str]]] = ()  # beyond postgresql.conf
    reload_steps: Sequence[str] = ()  # shell run in the running container's host before its SIGHUP
    publish: Publish | None = None
    depends_on: Sequence[pulumi.Resource] = ()


class PostgresContainer(pulumi.ComponentResource):
    """The Postgres container, for a primary or a streaming replica, and its config directory.

    Files change by reload; only the command line (settings read at start), image, data or envs
    change the container, and then it is replaced gracefully: SIGINT (fast shutdown: sessions end,
    a checkpoint is written) with up to POSTGRES_STOP_SECONDS before Docker would kill it.
    """

    container: docker.Container

    def __init__(self, name: str, args: PostgresContainerArgs, opts: pulumi.ResourceOptions | None = None) -> None:
        super().__init__("postgres-platform:index:PostgresContainer", name, None, opts)
        spec = args.spec
        config = ConfigFiles(
            f"{name}-config",
            ConfigFilesArgs(
                shell=args.shell,
                directory=spec.label,
                owner=POSTGRES_UID,
                files=[File(Path(CONFIG_FILE).name, "0644", args.config_file), *args.files],
                reload=reload_if_running(spec.name, *args.reload_steps),
            ),
            opts=pulumi.ResourceOptions(parent=self),
        )
        image = container_image(
            f"{name}-image", spec.image, args.image_base, args.placement.options(self, []), args.depends_on
        )
        self.container = docker.Container(
            f"{name}-container",
            **container_settings(spec, {**args.sources, CONFIG: MountSource(config.path)}),
            healthcheck=docker.ContainerHealthcheckArgs(
                tests=postgres_healthcheck(), interval="5s", timeout="3s", retries=24, start_period="10s"
            ),
            # Roles are created right after: wait until the server accepts connections.
            wait=True,
            wait_timeout=300,
            **args.placement.network("postgres", args.publish, POSTGRES_PORT),
            opts=args.placement.options(self, [image, config.written, *args.depends_on]).merge(
                # A fixed container name: the old container must go before the new one can start.
                pulumi.ResourceOptions(delete_before_replace=True)
            ),
        )
        self.register_outputs({"containerName": self.container.name})


@dataclass(frozen=True)
class PostgresServerArgs:
    container: PostgresContainerArgs  # its spec with initdb_password: initdb reads PASSWORD_FILE
    admin: AdminAddress


class PostgresServer(pulumi.ComponentResource):
    """The primary: its container, its superuser password, and the postgresql provider for its roles.

    The password reaches the image as its SCRAM verifier in a file (POSTGRES_PASSWORD_FILE, read once by
    initdb, which stores a verifier as it is), never in the container's environment and never as
    plaintext on the host; a new password is set with ALTER ROLE (the verifier, from a file in the
    config directory) in the running server, so rotating it recreates nothing.
    """

    superuser_password: pulumi.Output[str]
    admin_connection: AdminConnection
    provider: postgresql.Provider

    def __init__(self, name: str, args: PostgresServerArgs, opts: pulumi.ResourceOptions | None = None) -> None:
        super().__init__("postgres-platform:index:PostgresServer", name, None, opts)
        self.superuser_password = generated_password(f"{name}-superuser-password", self)
        verifier = self.superuser_password.apply(lambda pw: stable_verifier(SUPERUSER, pw))
        files = [
            File(Path(PASSWORD_FILE).name, "0600", verifier),
            File(Path(SUPERUSER_SQL).name, "0600", verifier.apply(lambda v: sql.set_password(SUPERUSER, v))),
        ]
        set_password = shlex.join(
            exec_argv(
                args.container.spec.name,
                ["psql", "-X", "-q", "-v", "ON_ERROR_STOP=1", "-d", "postgres", "-f", SUPERUSER_SQL],
            )
        )
        server = PostgresContainer(
            name,
            dataclasses.replace(
                args.container,
                files=[*args.container.files, *files],
                reload_steps=[*args.container.reload_steps, set_password],
            ),
            opts=pulumi.ResourceOptions(parent=self),
        )
        self.admin_connection = AdminConnection(args.admin, SUPERUSER, self.superuser_password)
        self.provider = admin_provider(f"{name}-provider", self.admin_connection, True, self, [server])
        self.register_outputs({"containerName": server.container.name})
