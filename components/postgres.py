"""PostgresContainer (a primary or a standby) and PostgresServer (the primary, its superuser and provider).

A `Placement` says where containers run: on the local Docker's bridge network with ports published
on loopback, or on a Hetzner host's own network (firewall and pg_hba guard it).
"""

from __future__ import annotations

import dataclasses
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

import pulumi
import pulumi_docker as docker
import pulumi_postgresql as postgresql

from postgres_platform.model.names import COMPONENT_LABEL, POSTGRES_PORT, POSTGRES_UID, SUPERUSER
from postgres_platform.passwords import generated_password
from postgres_platform.render.postgres import CERT_FILE, HBA_FILE, KEY_FILE

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


@dataclass(frozen=True)
class ServerTls:
    cert_pem: pulumi.Input[str]
    key_pem: pulumi.Input[str]  # secret


def server_files(hba: str | None, tls: ServerTls | None) -> list[docker.ContainerUploadArgs]:
    """Our pg_hba.conf and the server's certificate and key, where render.postgres's settings name them."""
    files = []
    if hba is not None:
        files.append(docker.ContainerUploadArgs(file=HBA_FILE, content=hba, owner=POSTGRES_UID))
    if tls is not None:
        files += [
            docker.ContainerUploadArgs(file=CERT_FILE, content=tls.cert_pem, owner=POSTGRES_UID),
            docker.ContainerUploadArgs(file=KEY_FILE, content=tls.key_pem, owner=POSTGRES_UID, permissions="0600"),
        ]
    return files


@dataclass(frozen=True)
class PostgresContainerArgs:
    image: str  # the literal reference: the pinned-images policy reads it at preview
    command: list[str]  # render.postgres.server_arguments: literals the connection-budget policy reads
    label: str  # COMPONENT_LABEL value: "postgres" (a primary) or "postgres-replica"
    placement: Placement
    data: docker.ContainerVolumeArgs
    envs: Sequence[pulumi.Input[str]] = ()
    publish: Publish | None = None
    files: Sequence[docker.ContainerUploadArgs] = ()
    depends_on: Sequence[pulumi.Resource] = ()


class PostgresContainer(pulumi.ComponentResource):
    """The Postgres container itself, for a primary or a streaming replica."""

    container: docker.Container

    def __init__(self, name: str, args: PostgresContainerArgs, opts: pulumi.ResourceOptions | None = None) -> None:
        super().__init__("postgres-platform:index:PostgresContainer", name, None, opts)
        image = docker.RemoteImage(
            f"{name}-image", name=args.image, keep_locally=True, opts=args.placement.options(self, [])
        )
        self.container = docker.Container(
            f"{name}-container",
            name=f"postgres-platform-{pulumi.get_stack()}-{name}",
            image=args.image,
            command=args.command,
            envs=list(args.envs) or None,
            labels=[docker.ContainerLabelArgs(label=COMPONENT_LABEL, value=args.label)],
            volumes=[args.data],
            uploads=list(args.files) or None,
            healthcheck=docker.ContainerHealthcheckArgs(
                tests=["CMD-SHELL", f"pg_isready -U {SUPERUSER} -h 127.0.0.1"],
                interval="5s",
                timeout="3s",
                retries=24,
                start_period="10s",
            ),
            # Roles are created right after: wait until the server accepts connections.
            wait=True,
            wait_timeout=300,
            restart="unless-stopped",
            **args.placement.container_args("postgres", args.publish, POSTGRES_PORT),
            opts=args.placement.options(self, [image, *args.depends_on]),
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
    container: PostgresContainerArgs  # without envs: the server sets POSTGRES_PASSWORD itself
    admin: AdminAddress


class PostgresServer(pulumi.ComponentResource):
    """The primary: its container, its superuser password, and the postgresql provider for its roles."""

    superuser_password: pulumi.Output[str]
    admin_connection: AdminConnection
    provider: postgresql.Provider

    def __init__(self, name: str, args: PostgresServerArgs, opts: pulumi.ResourceOptions | None = None) -> None:
        super().__init__("postgres-platform:index:PostgresServer", name, None, opts)
        self.superuser_password = generated_password(f"{name}-superuser-password", self)
        envs = [pulumi.Output.concat("POSTGRES_PASSWORD=", self.superuser_password)]
        server = PostgresContainer(
            name,
            dataclasses.replace(args.container, envs=envs),
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
