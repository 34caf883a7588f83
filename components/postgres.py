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
from typing import Any

import pulumi
import pulumi_docker as docker
import pulumi_postgresql as postgresql

from components.config_files import ConfigFileArgs, ConfigFiles, ConfigFilesArgs, HostShell
from components.resources.passwords import generated_password
from postgres_platform.model.images import BUILDS
from postgres_platform.model.names import COMPONENT_LABEL, POSTGRES_PORT, POSTGRES_UID, SUPERUSER
from postgres_platform.render import sql
from postgres_platform.render.containers import CONFIG, ContainerSpec, MountSource, exec_argv, postgres_healthcheck
from postgres_platform.render.files import reload_if_running
from postgres_platform.render.postgres import CERT_FILE, CONFIG_FILE, HBA_FILE, KEY_FILE, PASSWORD_FILE, SUPERUSER_SQL
from postgres_platform.render.scram import stable_verifier

# The provider's own pool runs as superuser: keep it inside adminHeadroom + reserved slots.
PROVIDER_MAX_CONNECTIONS = 4


@dataclass(frozen=True)
class Publish:
    """Publish the container port on this host address (never 0.0.0.0, Docker's default)."""

    ip: str
    port: int


@dataclass(frozen=True)
class Placement:
    """Where containers run: a bridge network with loopback ports (local), or a host's network (Hetzner)."""

    docker_provider: docker.Provider | None = None  # None: the Docker engine of the machine running Pulumi
    network_name: pulumi.Input[str] | None = None  # a bridge network; None: the host's network

    def container_args(self, alias: str, publish: Publish | None, internal_port: int) -> dict[str, Any]:
        if self.network_name is None:
            return {"network_mode": "host"}
        ports = (
            []
            if publish is None
            else [docker.ContainerPortArgs(internal=internal_port, external=publish.port, ip=publish.ip)]
        )
        return {
            "networks_advanced": [docker.ContainerNetworksAdvancedArgs(name=self.network_name, aliases=[alias])],
            "ports": ports,
        }

    def options(self, parent: pulumi.Resource, depends_on: Sequence[pulumi.Resource]) -> pulumi.ResourceOptions:
        return pulumi.ResourceOptions(parent=parent, provider=self.docker_provider, depends_on=list(depends_on))


# A ContainerSpec (render.containers) as a docker.Container: the real-container tests start the same
# spec with `ContainerSpec.docker_run`, so what they run is what `pulumi up` declares.
def container_settings(spec: ContainerSpec, sources: Mapping[str, MountSource[pulumi.Input[str]]]) -> dict[str, Any]:
    """docker.Container's arguments for the spec (all but network, health and options)."""
    return {
        "name": spec.name,
        "image": spec.image,  # the literal reference: the pinned-images policy reads it at preview
        "entrypoints": list(spec.entrypoint) if spec.entrypoint else None,
        "command": list(spec.command),
        "envs": list(spec.env) or None,
        "user": spec.user,
        "mounts": [
            docker.ContainerMountArgs(
                target=point.target, source=sources[key].source, type=sources[key].type, read_only=point.read_only
            )
            for key, point in spec.mounts.items()
        ],
        "labels": [docker.ContainerLabelArgs(label=COMPONENT_LABEL, value=spec.label)],
        "ulimits": [docker.ContainerUlimitArgs(name="nofile", soft=spec.open_files, hard=spec.open_files)]
        if spec.open_files
        else None,
        "restart": "unless-stopped",
        "stop_signal": spec.stop_signal,
        "stop_timeout": spec.stop_seconds,
        "destroy_grace_seconds": spec.stop_seconds,  # unset, the provider's delete stops with a 0 s timeout
    }


def container_image(
    name: str, reference: str, base: str, opts: pulumi.ResourceOptions, depends_on: Sequence[pulumi.Resource] = ()
) -> pulumi.Resource:
    """An image of images/ is built on the container's Docker host (FROM `base`, the pinned Debian
    packages as build args), with the legacy builder and host network, as scripts/build_images.py
    builds it for the tests; any other (pinned) image is pulled."""
    build = BUILDS.get(reference)
    if build is None:
        return docker.RemoteImage(name, name=reference, keep_locally=True, opts=opts)
    return docker.Image(
        name,
        image_name=reference,
        build=docker.DockerBuildArgs(
            context=str(build.directory),
            args=build.args_with_base(base),
            builder_version=docker.BuilderVersion.BUILDER_V1,
            network="host",  # apt reaches the Debian mirror whether or not the host has a bridge
        ),
        skip_push=True,
        opts=pulumi.ResourceOptions.merge(opts, pulumi.ResourceOptions(depends_on=list(depends_on))),
    )


@dataclass(frozen=True)
class ServerTls:
    cert_pem: pulumi.Input[str]
    key_pem: pulumi.Input[str]  # secret


def server_files(hba: str | None, tls: ServerTls | None) -> list[ConfigFileArgs]:
    """Our pg_hba.conf and the server's certificate and key, where render.postgres's settings name them."""
    files = []
    if hba is not None:
        files.append(ConfigFileArgs(Path(HBA_FILE).name, "0644", hba))
    if tls is not None:
        files += [
            ConfigFileArgs(Path(CERT_FILE).name, "0644", tls.cert_pem),
            ConfigFileArgs(Path(KEY_FILE).name, "0600", tls.key_pem),
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
    files: Sequence[ConfigFileArgs] = ()  # beyond postgresql.conf
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
                files=[ConfigFileArgs(Path(CONFIG_FILE).name, "0644", args.config_file), *args.files],
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
            **args.placement.container_args("postgres", args.publish, POSTGRES_PORT),
            opts=args.placement.options(self, [image, config.written, *args.depends_on]).merge(
                # A fixed container name: the old container must go before the new one can start.
                pulumi.ResourceOptions(delete_before_replace=True)
            ),
        )
        self.register_outputs({"containerName": self.container.name})


@dataclass(frozen=True)
class AdminAddress:
    """Where the machine running Pulumi reaches the primary as the superuser, and how it verifies it."""

    host: pulumi.Input[str]
    port: int
    sslmode: str
    sslrootcert: pulumi.Input[str] | None = None  # a file path (the provider and libpq take paths)


@dataclass(frozen=True)
class AdminConnection:
    """The superuser connection, typed: what the provider and the SQL re-apply step connect with."""

    address: AdminAddress
    user: str
    password: pulumi.Output[str]  # secret

    def as_secret_input(self) -> pulumi.Output[dict[str, Any]]:
        a = self.address
        return pulumi.Output.secret(
            {"host": a.host, "port": a.port, "user": self.user, "password": self.password, "sslmode": a.sslmode,
             "sslrootcert": a.sslrootcert}
        )  # fmt: skip


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
            ConfigFileArgs(Path(PASSWORD_FILE).name, "0600", verifier),
            ConfigFileArgs(Path(SUPERUSER_SQL).name, "0600", verifier.apply(lambda v: sql.set_password(SUPERUSER, v))),
        ]
        set_password = shlex.join(
            exec_argv(args.container.spec.name, ["psql", "-X", "-q", "-v", "ON_ERROR_STOP=1", "-d", "postgres",
                                                 "-f", SUPERUSER_SQL])
        )  # fmt: skip
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
        self.provider = postgresql.Provider(
            f"{name}-provider",
            host=args.admin.host,
            port=args.admin.port,
            username=SUPERUSER,
            password=self.superuser_password,
            sslmode=args.admin.sslmode,
            sslrootcert=args.admin.sslrootcert,
            superuser=True,
            max_connections=PROVIDER_MAX_CONNECTIONS,
            connect_timeout=30,
            opts=pulumi.ResourceOptions(parent=self, depends_on=[server]),
        )
        self.register_outputs({"containerName": server.container.name})
