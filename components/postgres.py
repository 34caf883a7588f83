"""PostgresServer: the Postgres container, its data volume, and the provider that manages roles in it."""

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
# The provider's own pool runs as superuser: keep it inside adminHeadroom + reserved slots.
PROVIDER_MAX_CONNECTIONS = 4


@dataclass(frozen=True)
class Publish:
    """Publish the container port on this host address (never 0.0.0.0, Docker's default)."""

    ip: str
    port: int


def _setting(value: SettingValue) -> str:
    if isinstance(value, bool):
        return "on" if value else "off"
    return str(value)


def server_arguments(config: PlatformConfig) -> list[str]:
    """`postgres -c name=value ...`: the budget's two numbers first, where the policy reads them."""
    pg = config.postgres
    settings: dict[str, SettingValue] = {
        "max_connections": pg.max_connections,
        "superuser_reserved_connections": pg.superuser_reserved_connections,
        "password_encryption": "scram-sha-256",
        **pg.settings,
    }
    args = ["postgres"]
    for name, value in settings.items():
        args += ["-c", f"{name}={_setting(value)}"]
    return args


def superuser_access(
    name: str, *, host: str, port: int, password: pulumi.Output[str], sslmode: str, opts: pulumi.ResourceOptions
) -> tuple[pulumi.Output[dict[str, Any]], postgresql.Provider]:
    """The superuser's connection (for SqlApply, secret) and the provider that manages roles with it."""
    connection = pulumi.Output.secret(
        {"host": host, "port": port, "user": SUPERUSER, "password": password, "sslmode": sslmode}
    )
    provider = postgresql.Provider(
        name,
        host=host,
        port=port,
        username=SUPERUSER,
        password=password,
        sslmode=sslmode,
        superuser=True,
        max_connections=PROVIDER_MAX_CONNECTIONS,
        connect_timeout=30,
        opts=opts,
    )
    return connection, provider


class PostgresServer(pulumi.ComponentResource):
    container_name: pulumi.Output[str]  # its host name on the Docker network
    superuser_password: pulumi.Output[str]
    admin_connection: pulumi.Output[dict[str, Any]]  # secret: host, port, user, password, sslmode
    provider: postgresql.Provider

    def __init__(
        self,
        name: str,
        config: PlatformConfig,
        *,
        network_name: pulumi.Input[str],
        publish: Publish,
        protect_data: bool,
        opts: pulumi.ResourceOptions | None = None,
    ) -> None:
        super().__init__("postgres-platform:index:PostgresServer", name, None, opts)
        child = pulumi.ResourceOptions(parent=self)
        stack = pulumi.get_stack()
        password = random.RandomPassword(f"{name}-superuser-password", length=32, special=False, opts=child)
        self.superuser_password = pulumi.Output.secret(password.result)
        image = docker.RemoteImage(f"{name}-image", name=config.postgres.image, keep_locally=True, opts=child)
        volume = docker.Volume(
            f"{name}-data",
            name=f"postgres-platform-{stack}-pgdata",
            labels=[docker.VolumeLabelArgs(label=COMPONENT_LABEL, value="postgres-data")],
            opts=pulumi.ResourceOptions(parent=self, protect=protect_data, retain_on_delete=protect_data),
        )
        container = docker.Container(
            f"{name}-container",
            name=f"postgres-platform-{stack}-postgres",
            # The literal reference (not image.name): the pinned-images policy must see it at preview.
            image=config.postgres.image,
            command=server_arguments(config),
            envs=[pulumi.Output.concat("POSTGRES_PASSWORD=", self.superuser_password)],
            labels=[docker.ContainerLabelArgs(label=COMPONENT_LABEL, value="postgres")],
            networks_advanced=[docker.ContainerNetworksAdvancedArgs(name=network_name, aliases=["postgres"])],
            ports=[docker.ContainerPortArgs(internal=POSTGRES_PORT, external=publish.port, ip=publish.ip)],
            volumes=[docker.ContainerVolumeArgs(volume_name=volume.name, container_path="/var/lib/postgresql/data")],
            healthcheck=docker.ContainerHealthcheckArgs(
                tests=["CMD-SHELL", f"pg_isready -U {SUPERUSER} -h 127.0.0.1"],
                interval="5s",
                timeout="3s",
                retries=24,
                start_period="10s",
            ),
            # Roles are created right after: wait until the server accepts connections.
            wait=True,
            wait_timeout=180,
            restart="unless-stopped",
            opts=pulumi.ResourceOptions(parent=self, depends_on=[image]),
        )
        self.container_name = container.name
        self.admin_connection, self.provider = superuser_access(
            f"{name}-provider",
            host=publish.ip,
            port=publish.port,
            password=self.superuser_password,
            sslmode="disable",
            opts=pulumi.ResourceOptions(parent=self, depends_on=[container]),
        )
        self.register_outputs({"containerName": self.container_name})
