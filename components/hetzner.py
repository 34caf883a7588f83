"""Hetzner: the private network, the firewall, and database hosts with protected data volumes.

Docker readiness: the hosts boot Hetzner's `docker-ce` app image (Docker preinstalled) and cloud-init
mounts the data volume; a `WaitForHost` command then runs `cloud-init status --wait` over SSH before the
Docker provider (also over SSH) creates any container. Both SSH connections use the operator's
ssh-agent (SSH_AUTH_SOCK), so no private key is stored in config or state.
"""

from __future__ import annotations

import pulumi
import pulumi_command as command
import pulumi_docker as docker
import pulumi_hcloud as hcloud

from components.config import HetznerConfig

DATA_MOUNT = "/mnt/pgdata"  # where cloud-init mounts the host's volume; Postgres data lives below it
SSH_PORT = 22
POSTGRES_PORT = 5432


def firewall_rules(hetzner: HetznerConfig) -> list[hcloud.FirewallRuleArgs]:
    """Inbound: SSH and Postgres from the admin CIDRs only. Nothing else; PgBouncer is private-only.

    Hetzner firewalls filter public interfaces; apps reach Postgres and PgBouncer over the private
    network, which the firewall does not touch.
    """
    return [
        hcloud.FirewallRuleArgs(
            direction="in", protocol="tcp", port=str(port), source_ips=list(hetzner.admin_cidrs), description=purpose
        )
        for port, purpose in ((SSH_PORT, "ssh from admins"), (POSTGRES_PORT, "postgres from admins (provider)"))
    ]


def cloud_init(volume_id: int | str) -> str:
    """Mount the data volume (formatted ext4 by Hetzner) before Docker starts any container."""
    device = f"/dev/disk/by-id/scsi-0HC_Volume_{volume_id}"
    return f"""#cloud-config
mounts:
  - ["{device}", "{DATA_MOUNT}", "ext4", "discard,nofail,defaults", "0", "0"]
runcmd:
  - mkdir -p {DATA_MOUNT}
  - mount -a
  - mountpoint -q {DATA_MOUNT}
  - systemctl enable --now docker
"""


class PrivateNetwork(pulumi.ComponentResource):
    network_id: pulumi.Output[int]
    subnet_id: pulumi.Output[str]

    def __init__(self, name: str, hetzner: HetznerConfig, opts: pulumi.ResourceOptions | None = None) -> None:
        super().__init__("postgres-platform:index:PrivateNetwork", name, None, opts)
        child = pulumi.ResourceOptions(parent=self)
        network = hcloud.Network(
            f"{name}-network",
            ip_range=hetzner.ip_range,
            labels={"managed-by": "postgres-platform", "env": pulumi.get_stack()},
            opts=child,
        )
        subnet = hcloud.NetworkSubnet(
            f"{name}-subnet",
            network_id=network.id.apply(int),
            type="cloud",
            network_zone=hetzner.network_zone,
            ip_range=hetzner.subnet,
            opts=child,
        )
        self.network_id = network.id.apply(int)
        self.subnet_id = subnet.id
        self.register_outputs({"networkId": self.network_id})


class DatabaseHost(pulumi.ComponentResource):
    """One server in the placement group, on the private network at a fixed IP, with its data volume."""

    public_ip: pulumi.Output[str]
    private_ip: str
    docker_provider: docker.Provider

    def __init__(
        self,
        name: str,
        hetzner: HetznerConfig,
        *,
        role: str,
        private_ip: str,
        network: PrivateNetwork,
        firewall: hcloud.Firewall,
        placement_group: hcloud.PlacementGroup,
        opts: pulumi.ResourceOptions | None = None,
    ) -> None:
        super().__init__("postgres-platform:index:DatabaseHost", name, None, opts)
        child = pulumi.ResourceOptions(parent=self)
        labels = {"managed-by": "postgres-platform", "env": pulumi.get_stack(), "role": role}
        # Losing PGDATA must take an explicit step: Pulumi protect and Hetzner's delete protection.
        volume = hcloud.Volume(
            f"{name}-data",
            size=hetzner.volume_size,
            location=hetzner.location,
            format="ext4",
            delete_protection=True,
            labels={**labels, "data": "pgdata"},
            opts=pulumi.ResourceOptions(parent=self, protect=True),
        )
        server = hcloud.Server(
            f"{name}-server",
            server_type=hetzner.server_type,
            image=hetzner.image,
            location=hetzner.location,
            ssh_keys=list(hetzner.ssh_keys),
            labels=labels,
            placement_group_id=placement_group.id.apply(int),
            firewall_ids=[firewall.id.apply(int)],
            networks=[hcloud.ServerNetworkArgs(network_id=network.network_id, ip=private_ip)],
            user_data=volume.id.apply(cloud_init),
            delete_protection=hetzner.protect_servers,
            rebuild_protection=hetzner.protect_servers,
            opts=pulumi.ResourceOptions(parent=self, depends_on=[network]),
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
        ready = command.remote.Command(
            f"{name}-ready",
            connection=command.remote.ConnectionArgs(host=self.public_ip, user="root"),
            create=f"cloud-init status --wait >/dev/null; mountpoint -q {DATA_MOUNT} && docker info >/dev/null",
            opts=pulumi.ResourceOptions(parent=self, depends_on=[attachment]),
        )
        self.docker_provider = docker.Provider(
            f"{name}-docker",
            host=pulumi.Output.concat("ssh://root@", self.public_ip),
            ssh_opts=["-o", "StrictHostKeyChecking=accept-new", "-o", "ServerAliveInterval=30"],
            opts=pulumi.ResourceOptions(parent=self, depends_on=[ready]),
        )
        self.register_outputs({"publicIp": self.public_ip, "privateIp": private_ip})
