"""PostgresServer: the Postgres container, where its data lives, and the provider that manages roles in it.

Shared by both targets; a `Placement` says where it runs: on the local Docker's bridge network with
ports published on loopback, or on a Hetzner host's own network (firewall and pg_hba guard it).
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import pulumi
import pulumi_docker as docker
import pulumi_postgresql as postgresql
import pulumi_random as random

from components.config import PlatformConfig, SettingValue
from components.names import COMPONENT_LABEL, SUPERUSER

POSTGRES_PORT = 5432
POSTGRES_UID = "999"  # the official image's postgres user
CONFIG_DIR = "/etc/postgresql"
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

    def options(self, parent: pulumi.Resource, depends_on: list[pulumi.Resource]) -> pulumi.ResourceOptions:
        return pulumi.ResourceOptions(parent=parent, provider=self.docker_provider, depends_on=depends_on)


@dataclass(frozen=True)
class ServerTls:
    cert_pem: pulumi.Input[str]
    key_pem: pulumi.Input[str]  # secret


def _setting(value: SettingValue) -> str:
    if isinstance(value, bool):
        return "on" if value else "off"
    return str(value)


def server_arguments(config: PlatformConfig, extra: dict[str, SettingValue] | None = None) -> list[str]:
    """`postgres -c name=value ...`: the budget's two numbers first, where the policy reads them.

    Only literals: the connection-budget policy reads this list at preview.
    """
    pg = config.postgres
    settings: dict[str, SettingValue] = {
        "max_connections": pg.max_connections,
        "superuser_reserved_connections": pg.superuser_reserved_connections,
        "password_encryption": "scram-sha-256",
        **pg.settings,
        **(extra or {}),
    }
    args = ["postgres"]
    for name, value in settings.items():
        args += ["-c", f"{name}={_setting(value)}"]
    return args


def tls_and_hba_settings() -> dict[str, SettingValue]:
    """A Hetzner host's server: TLS 1.2+ only and our pg_hba.conf, listening on the host's interfaces."""
    return {
        "listen_addresses": "*",
        "hba_file": f"{CONFIG_DIR}/pg_hba.conf",
        "ssl": True,
        "ssl_cert_file": f"{CONFIG_DIR}/server.crt",
        "ssl_key_file": f"{CONFIG_DIR}/server.key",
        "ssl_min_protocol_version": "TLSv1.2",
    }


def superuser_access(
    name: str,
    *,
    host: pulumi.Input[str],
    port: int,
    password: pulumi.Output[str],
    sslmode: str,
    sslrootcert: pulumi.Input[str] | None = None,
    opts: pulumi.ResourceOptions,
) -> tuple[pulumi.Output[dict[str, Any]], postgresql.Provider]:
    """The superuser's connection (for SqlApply, secret) and the provider that manages roles with it."""
    connection = pulumi.Output.secret(
        {"host": host, "port": port, "user": SUPERUSER, "password": password, "sslmode": sslmode,
         "sslrootcert": sslrootcert}
    )  # fmt: skip
    provider = postgresql.Provider(
        name,
        host=host,
        port=port,
        username=SUPERUSER,
        password=password,
        sslmode=sslmode,
        sslrootcert=sslrootcert,
        superuser=True,
        max_connections=PROVIDER_MAX_CONNECTIONS,
        connect_timeout=30,
        opts=opts,
    )
    return connection, provider


class PostgresContainer(pulumi.ComponentResource):
    """The Postgres container itself, for a primary or a streaming replica."""

    container: docker.Container

    def __init__(
        self,
        name: str,
        config: PlatformConfig,
        *,
        placement: Placement,
        data: docker.ContainerVolumeArgs,
        label: str,
        envs: list[pulumi.Input[str]] | None = None,
        publish: Publish | None = None,
        tls: ServerTls | None = None,
        hba: str | None = None,
        extra_settings: dict[str, SettingValue] | None = None,
        extra_uploads: list[docker.ContainerUploadArgs] | None = None,
        depends_on: list[pulumi.Resource] | None = None,
        opts: pulumi.ResourceOptions | None = None,
    ) -> None:
        super().__init__("postgres-platform:index:PostgresContainer", name, None, opts)
        image = docker.RemoteImage(
            f"{name}-image", name=config.postgres.image, keep_locally=True, opts=placement.options(self, [])
        )
        uploads = []
        if hba is not None:
            uploads.append(
                docker.ContainerUploadArgs(file=f"{CONFIG_DIR}/pg_hba.conf", content=hba, owner=POSTGRES_UID)
            )
        if tls is not None:
            uploads += [
                docker.ContainerUploadArgs(file=f"{CONFIG_DIR}/server.crt", content=tls.cert_pem, owner=POSTGRES_UID),
                docker.ContainerUploadArgs(
                    file=f"{CONFIG_DIR}/server.key", content=tls.key_pem, owner=POSTGRES_UID, permissions="0600"
                ),
            ]
        uploads += extra_uploads or []
        settings = {**(tls_and_hba_settings() if tls is not None else {}), **(extra_settings or {})}
        self.container = docker.Container(
            f"{name}-container",
            name=f"postgres-platform-{pulumi.get_stack()}-{name}",
            # The literal reference (not image.name): the pinned-images policy must see it at preview.
            image=config.postgres.image,
            command=server_arguments(config, settings),
            envs=envs,
            labels=[docker.ContainerLabelArgs(label=COMPONENT_LABEL, value=label)],
            volumes=[data],
            uploads=uploads or None,
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
            **placement.container_args("postgres", publish, POSTGRES_PORT),
            opts=placement.options(self, [image, *(depends_on or [])]),
        )
        self.register_outputs({"containerName": self.container.name})


class PostgresServer(pulumi.ComponentResource):
    """The primary: its container, its superuser password, and the postgresql provider for its roles."""

    container_name: pulumi.Output[str]  # its host name on the Docker network
    superuser_password: pulumi.Output[str]
    admin_connection: pulumi.Output[dict[str, Any]]  # secret: host, port, user, password, sslmode
    provider: postgresql.Provider

    def __init__(
        self,
        name: str,
        config: PlatformConfig,
        *,
        placement: Placement,
        data: docker.ContainerVolumeArgs,
        admin_host: pulumi.Input[str],
        admin_port: int,
        publish: Publish | None = None,
        tls: ServerTls | None = None,
        hba: str | None = None,
        sslrootcert: pulumi.Input[str] | None = None,
        opts: pulumi.ResourceOptions | None = None,
    ) -> None:
        super().__init__("postgres-platform:index:PostgresServer", name, None, opts)
        password = random.RandomPassword(
            f"{name}-superuser-password", length=32, special=False, opts=pulumi.ResourceOptions(parent=self)
        )
        self.superuser_password = pulumi.Output.secret(password.result)
        server = PostgresContainer(
            name,
            config,
            placement=placement,
            data=data,
            label="postgres",
            envs=[pulumi.Output.concat("POSTGRES_PASSWORD=", self.superuser_password)],
            publish=publish,
            tls=tls,
            hba=hba,
            opts=pulumi.ResourceOptions(parent=self),
        )
        self.container_name = server.container.name
        self.admin_connection, self.provider = superuser_access(
            f"{name}-provider",
            host=admin_host,
            port=admin_port,
            password=self.superuser_password,
            sslmode="verify-full" if tls is not None else "disable",
            sslrootcert=sslrootcert,
            opts=pulumi.ResourceOptions(parent=self, depends_on=[server]),
        )
        self.register_outputs({"containerName": self.container_name})
