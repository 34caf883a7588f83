"""LocalHost: the Docker network and PGDATA volume of the local stack (Docker on the developer's machine)."""

from __future__ import annotations

import pulumi
import pulumi_docker as docker

from postgres_platform.model.names import COMPONENT_LABEL
from postgres_platform.render.containers import MountSource


class LocalHost(pulumi.ComponentResource):
    """A private bridge network for Postgres and PgBouncer (ports published on loopback only), and PGDATA."""

    network_name: pulumi.Output[str]
    data: MountSource[pulumi.Input[str]]

    def __init__(self, name: str, opts: pulumi.ResourceOptions | None = None) -> None:
        super().__init__("postgres-platform:index:LocalHost", name, None, opts)
        network = docker.Network(
            f"{name}-network",
            name=f"postgres-platform-{pulumi.get_stack()}",
            driver="bridge",
            opts=pulumi.ResourceOptions(parent=self),
        )
        volume = docker.Volume(
            f"{name}-pgdata",
            name=f"postgres-platform-{pulumi.get_stack()}-pgdata",
            labels=[docker.VolumeLabelArgs(label=COMPONENT_LABEL, value="postgres-data")],
            opts=pulumi.ResourceOptions(parent=self),  # a developer's scratch data: not protected
        )
        self.network_name = network.name
        self.data = MountSource(volume.name, "volume")
        self.register_outputs({"networkName": self.network_name})
