"""LocalHost: the Docker network of the local stack (Docker on the developer's machine)."""

from __future__ import annotations

import pulumi
import pulumi_docker as docker

LOOPBACK = "127.0.0.1"


class LocalHost(pulumi.ComponentResource):
    """A private bridge network for Postgres and PgBouncer; ports are published on loopback only."""

    network_name: pulumi.Output[str]
    address: str  # where apps and the operator on this machine reach published ports

    def __init__(self, name: str, opts: pulumi.ResourceOptions | None = None) -> None:
        super().__init__("postgres-platform:index:LocalHost", name, None, opts)
        network = docker.Network(
            f"{name}-network",
            name=f"postgres-platform-{pulumi.get_stack()}",
            driver="bridge",
            opts=pulumi.ResourceOptions(parent=self),
        )
        self.network_name = network.name
        self.address = LOOPBACK
        self.register_outputs({"networkName": self.network_name})
