"""Failover on Hetzner (hetzner.failover): the witnesses that give etcd its third member, the cluster's
firewall rules, and the private load balancer whose health checks ask Patroni which host is the primary.

Hetzner's private networks are layer 3 (no VRRP, no ARP-moved VIP), so the address that follows the
primary is a Load Balancer's, attached to the private network only (docs/decisions/0007-...). It
forwards TCP to PgBouncer and Postgres on every database host; a host is in rotation for a service only
while Patroni's REST API answers 200 on that service's path (`/primary`, or `/replica` for read DSNs).
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass

import pulumi
import pulumi_command as command
import pulumi_docker as docker
import pulumi_hcloud as hcloud

from components.config_files import HostShell
from components.hetzner import PrivateNetwork
from postgres_platform.render.hetzner import (
    CONFIG_ROOT,
    HEALTH_INTERVAL,
    HEALTH_RETRIES,
    HEALTH_TIMEOUT,
    REST_API_TLS,
    witness_cloud_init,
)


def cluster_firewall_rules(subnet: str, ports: Mapping[str, int]) -> list[hcloud.FirewallRuleArgs]:
    """Patroni's REST API and etcd's ports, from the private subnet only (never the admin CIDRs or the
    internet).

    Hetzner firewalls filter the public interface, where no packet comes from the private subnet: these
    rules open nothing there, and say (to the policy pack and to a reader) that the ports are the private
    network's. On it, Patroni and etcd listen on the host's private IP only.
    """
    return [
        hcloud.FirewallRuleArgs(
            direction="in", protocol="tcp", port=str(port), source_ips=[subnet], description=f"{key} from the subnet"
        )
        for key, port in ports.items()
    ]


@dataclass(frozen=True)
class WitnessHostArgs:
    private_ip: str
    location: str
    server_type: str
    image: str
    ssh_keys: Sequence[str]
    protect_server: bool
    network: PrivateNetwork
    firewall: hcloud.Firewall
    placement_group: hcloud.PlacementGroup  # the database hosts' spread group: another physical host


class WitnessHost(pulumi.ComponentResource):
    """A small server on the private network that runs an etcd member only: no volume, no Postgres."""

    public_ip: pulumi.Output[str]
    private_ip: str
    docker_provider: docker.Provider
    shell: HostShell

    def __init__(self, name: str, args: WitnessHostArgs, opts: pulumi.ResourceOptions | None = None) -> None:
        super().__init__("postgres-platform:index:WitnessHost", name, None, opts)
        labels = {"managed-by": "postgres-platform", "env": pulumi.get_stack(), "role": "witness"}
        server = hcloud.Server(
            f"{name}-server",
            server_type=args.server_type,
            image=args.image,
            location=args.location,
            ssh_keys=list(args.ssh_keys),
            labels=labels,
            placement_group_id=args.placement_group.id.apply(int),
            firewall_ids=[args.firewall.id.apply(int)],
            networks=[hcloud.ServerNetworkArgs(network_id=args.network.network_id, ip=args.private_ip)],
            user_data=witness_cloud_init(),
            delete_protection=args.protect_server,
            rebuild_protection=args.protect_server,
            # As for the database hosts: both are ForceNew and read at first boot only.
            opts=pulumi.ResourceOptions(parent=self, depends_on=[args.network], ignore_changes=["sshKeys", "userData"]),
        )
        self.public_ip = server.ipv4_address
        self.private_ip = args.private_ip
        ssh = command.remote.ConnectionArgs(host=self.public_ip, user="root")
        self.shell = HostShell(root=CONFIG_ROOT, ssh=ssh)
        ready = command.remote.Command(
            f"{name}-ready",
            connection=ssh,
            create="cloud-init status --wait >/dev/null; docker info >/dev/null",
            opts=pulumi.ResourceOptions(parent=self, depends_on=[server]),
        )
        self.docker_provider = docker.Provider(
            f"{name}-docker",
            host=pulumi.Output.concat("ssh://root@", self.public_ip),
            ssh_opts=["-o", "StrictHostKeyChecking=accept-new", "-o", "ServerAliveInterval=30"],
            opts=pulumi.ResourceOptions(parent=self, depends_on=[ready]),
        )
        self.register_outputs({"publicIp": self.public_ip, "privateIp": args.private_ip})


@dataclass(frozen=True)
class Forward:
    """One service of the load balancer: its port, the hosts' port, and the REST path that gates a host."""

    listen_port: int
    destination_port: int
    check_path: str  # PRIMARY_CHECK or REPLICA_CHECK


@dataclass(frozen=True)
class PrimaryLoadBalancerArgs:
    load_balancer_type: str
    location: str
    private_ip: str  # fixed (hetzner.load_balancer_ip): DSNs and certificates name it before it exists
    network: PrivateNetwork
    servers: Sequence[hcloud.Server]  # the database hosts, each a target on its private IP
    forwards: Sequence[Forward]
    rest_api_port: int  # where the health checks ask Patroni
    protect: bool  # Hetzner delete protection (hetzner.protectServers)


class PrimaryLoadBalancer(pulumi.ComponentResource):
    """A Hetzner Load Balancer on the private network only, forwarding TCP to whichever database host
    Patroni's REST API names for each service."""

    private_ip: str

    def __init__(self, name: str, args: PrimaryLoadBalancerArgs, opts: pulumi.ResourceOptions | None = None) -> None:
        super().__init__("postgres-platform:index:PrimaryLoadBalancer", name, None, opts)
        child = pulumi.ResourceOptions(parent=self)
        balancer = hcloud.LoadBalancer(
            f"{name}-lb",
            load_balancer_type=args.load_balancer_type,
            location=args.location,
            labels={"managed-by": "postgres-platform", "env": pulumi.get_stack(), "role": "primary-endpoint"},
            delete_protection=args.protect,
            opts=child,
        )
        # The public interface off: the DSNs' address exists on the private network only.
        attached = hcloud.LoadBalancerNetwork(
            f"{name}-lb-network",
            load_balancer_id=balancer.id.apply(int),
            subnet_id=args.network.subnet_id,
            ip=args.private_ip,
            enable_public_interface=False,
            opts=pulumi.ResourceOptions(parent=self, depends_on=[args.network]),
        )
        for i, server in enumerate(args.servers):
            # To the host's private IP: the LB must be in the network first (Hetzner refuses it before).
            hcloud.LoadBalancerTarget(
                f"{name}-lb-target-{i}",
                load_balancer_id=balancer.id.apply(int),
                type="server",
                server_id=server.id.apply(int),
                use_private_ip=True,
                opts=pulumi.ResourceOptions(parent=self, depends_on=[attached]),
            )
        for forward in args.forwards:
            hcloud.LoadBalancerService(
                f"{name}-lb-{forward.listen_port}",
                load_balancer_id=balancer.id,
                protocol="tcp",  # TLS end to end: PgBouncer and Postgres terminate it, not the LB
                listen_port=forward.listen_port,
                destination_port=forward.destination_port,
                proxyprotocol=False,  # neither PgBouncer nor Postgres reads it
                health_check=hcloud.LoadBalancerServiceHealthCheckArgs(
                    protocol="http",
                    port=args.rest_api_port,
                    interval=HEALTH_INTERVAL,
                    timeout=HEALTH_TIMEOUT,
                    retries=HEALTH_RETRIES,
                    http=hcloud.LoadBalancerServiceHealthCheckHttpArgs(
                        path=forward.check_path, status_codes=["200"], tls=REST_API_TLS
                    ),
                ),
                opts=pulumi.ResourceOptions(parent=self, depends_on=[attached]),
            )
        self.private_ip = args.private_ip
        self.register_outputs({"privateIp": args.private_ip})
