"""Hetzner: the private network, the firewall, and database hosts with protected data volumes.

Docker readiness: the hosts boot Hetzner's `docker-ce` app image (Docker preinstalled) and cloud-init
mounts the data volume; a `WaitForHost` command then runs `cloud-init status --wait` over SSH before the
Docker provider (also over SSH) creates any container. Both SSH connections use the operator's
ssh-agent (SSH_AUTH_SOCK), so no private key is stored in config or state.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

import pulumi
import pulumi_command as command
import pulumi_docker as docker
import pulumi_hcloud as hcloud

from components.config_files import HostShell
from postgres_platform.model.names import POSTGRES_PORT
from postgres_platform.render.hetzner import CONFIG_ROOT, DATA_MOUNT, cloud_init, grow_filesystem_script

SSH_PORT = 22


def firewall_rules(admin_cidrs: Sequence[str]) -> list[hcloud.FirewallRuleArgs]:
    """Inbound: SSH and Postgres from the admin CIDRs only. Nothing else; PgBouncer is private-only.

    Hetzner firewalls filter public interfaces; apps reach Postgres and PgBouncer over the private
    network, which the firewall does not touch.
    """
    return [
        hcloud.FirewallRuleArgs(
            direction="in", protocol="tcp", port=str(port), source_ips=list(admin_cidrs), description=purpose
        )
        for port, purpose in ((SSH_PORT, "ssh from admins"), (POSTGRES_PORT, "postgres from admins (provider)"))
    ]


@dataclass(frozen=True)
class PrivateNetworkArgs:
    ip_range: str
    subnet: str
    network_zone: str


class PrivateNetwork(pulumi.ComponentResource):
    network_id: pulumi.Output[int]
    subnet_id: pulumi.Output[str]

    def __init__(self, name: str, args: PrivateNetworkArgs, opts: pulumi.ResourceOptions | None = None) -> None:
        super().__init__("postgres-platform:index:PrivateNetwork", name, None, opts)
        child = pulumi.ResourceOptions(parent=self)
        network = hcloud.Network(
            f"{name}-network",
            ip_range=args.ip_range,
            labels={"managed-by": "postgres-platform", "env": pulumi.get_stack()},
            opts=child,
        )
        subnet = hcloud.NetworkSubnet(
            f"{name}-subnet",
            network_id=network.id.apply(int),
            type="cloud",
            network_zone=args.network_zone,
            ip_range=args.subnet,
            opts=child,
        )
        self.network_id = network.id.apply(int)
        self.subnet_id = subnet.id
        self.register_outputs({"networkId": self.network_id})


@dataclass(frozen=True)
class DatabaseHostArgs:
    role: str  # primary | replica (a label)
    private_ip: str
    location: str
    server_type: str
    image: str
    ssh_keys: Sequence[str]
    volume_size: int  # GB
    protect_server: bool  # Hetzner delete and rebuild protection
    network: PrivateNetwork
    firewall: hcloud.Firewall
    placement_group: hcloud.PlacementGroup


class DatabaseHost(pulumi.ComponentResource):
    """One server in the placement group, on the private network at a fixed IP, with its data volume."""

    public_ip: pulumi.Output[str]
    private_ip: str
    server: hcloud.Server  # a load balancer's target (hetzner.failover)
    docker_provider: docker.Provider
    shell: HostShell  # config directories under CONFIG_ROOT, written over SSH

    def __init__(self, name: str, args: DatabaseHostArgs, opts: pulumi.ResourceOptions | None = None) -> None:
        super().__init__("postgres-platform:index:DatabaseHost", name, None, opts)
        child = pulumi.ResourceOptions(parent=self)
        labels = {"managed-by": "postgres-platform", "env": pulumi.get_stack(), "role": args.role}
        private_ip = args.private_ip
        # Losing PGDATA must take an explicit step: Pulumi protect and Hetzner's delete protection.
        volume = hcloud.Volume(
            f"{name}-data",
            size=args.volume_size,
            location=args.location,
            format="ext4",
            delete_protection=True,
            labels={**labels, "data": "pgdata"},
            opts=pulumi.ResourceOptions(parent=self, protect=True),
        )
        server = hcloud.Server(
            f"{name}-server",
            server_type=args.server_type,
            image=args.image,
            location=args.location,
            ssh_keys=list(args.ssh_keys),
            labels=labels,
            placement_group_id=args.placement_group.id.apply(int),
            firewall_ids=[args.firewall.id.apply(int)],
            networks=[hcloud.ServerNetworkArgs(network_id=args.network.network_id, ip=private_ip)],
            user_data=volume.id.apply(cloud_init),
            delete_protection=args.protect_server,
            rebuild_protection=args.protect_server,
            # Both force a new server in the hcloud provider (ForceNew in internal/server/resource.go), and
            # are read once at first boot anyway: a new key is rolled on the host, not by a rebuild
            # (docs/operations/changing-a-live-stack.md).
            opts=pulumi.ResourceOptions(parent=self, depends_on=[args.network], ignore_changes=["sshKeys", "userData"]),
        )
        attachment = hcloud.VolumeAttachment(
            f"{name}-data-attachment",
            server_id=server.id.apply(int),
            volume_id=volume.id.apply(int),
            automount=False,  # cloud-init mounts it at DATA_MOUNT
            opts=child,
        )
        self.public_ip = server.ipv4_address
        self.private_ip = private_ip
        self.server = server
        ssh = command.remote.ConnectionArgs(host=self.public_ip, user="root")
        self.shell = HostShell(root=CONFIG_ROOT, ssh=ssh)
        ready = command.remote.Command(
            f"{name}-ready",
            connection=ssh,
            create=f"cloud-init status --wait >/dev/null; mountpoint -q {DATA_MOUNT} && docker info >/dev/null",
            opts=pulumi.ResourceOptions(parent=self, depends_on=[attachment]),
        )
        # Hetzner grows the volume in place (size is not ForceNew); the filesystem must follow, online.
        # The size is in the script, so a new size re-runs it (pulumi-command's Update runs `create`).
        command.remote.Command(
            f"{name}-grow-filesystem",
            connection=ssh,
            create=grow_filesystem_script(args.volume_size),
            opts=pulumi.ResourceOptions(parent=self, depends_on=[ready, volume]),
        )
        self.docker_provider = docker.Provider(
            f"{name}-docker",
            host=pulumi.Output.concat("ssh://root@", self.public_ip),
            ssh_opts=["-o", "StrictHostKeyChecking=accept-new", "-o", "ServerAliveInterval=30"],
            opts=pulumi.ResourceOptions(parent=self, depends_on=[ready]),
        )
        self.register_outputs({"publicIp": self.public_ip, "privateIp": private_ip})
