"""How any container of a ContainerSpec (render.containers) is declared, where it runs, and its image.

A `Placement` says where containers run: on the local Docker's bridge network with ports published
on loopback, or on a Hetzner host's own network (firewall and pg_hba guard it).
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import TypedDict

import pulumi
import pulumi_docker as docker

from postgres_platform.model.images import BUILDS
from postgres_platform.model.names import COMPONENT_LABEL
from postgres_platform.render.containers import ContainerSpec, MountSource


class ContainerNetwork(TypedDict, total=False):
    network_mode: str
    networks_advanced: list[docker.ContainerNetworksAdvancedArgs]
    ports: list[docker.ContainerPortArgs]


class ContainerSettings(TypedDict):
    """docker.Container's arguments that a ContainerSpec decides (typed, so a misspelt one fails mypy)."""

    name: str
    image: str
    entrypoints: list[str] | None
    command: list[str]
    envs: list[str] | None
    user: str | None
    mounts: list[docker.ContainerMountArgs]
    labels: list[docker.ContainerLabelArgs]
    ulimits: list[docker.ContainerUlimitArgs] | None
    restart: str
    stop_signal: str | None
    stop_timeout: int | None
    destroy_grace_seconds: int | None


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

    def network(self, alias: str, publish: Publish | None, internal_port: int) -> ContainerNetwork:
        """docker.Container's network arguments: the host's network, or the bridge with loopback ports."""
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
def container_settings(spec: ContainerSpec, sources: Mapping[str, MountSource[pulumi.Input[str]]]) -> ContainerSettings:
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
