"""Reachability: no database port open to the internet, Patroni's and etcd's ports to the private network only,
no host-network Postgres on every interface unguarded, no load balancer with a public interface."""

from __future__ import annotations

import ipaddress
from collections.abc import Mapping
from typing import Any

from pulumi_policy import (
    EnforcementLevel,
    PolicyConfigSchema,
    ReportViolation,
    ResourceValidationArgs,
    ResourceValidationPolicy,
    StackValidationArgs,
    StackValidationPolicy,
)

from policy.resources import (
    CONTAINER,
    FIREWALL,
    LOAD_BALANCER,
    LOAD_BALANCER_NETWORK,
    component,
    postgres_servers,
    settings_of,
)
from postgres_platform.model.names import PGBOUNCER_PORT, POSTGRES_PORT
from postgres_platform.model.networks import is_private, too_wide
from postgres_platform.render.monitoring_containers import MONITORING_LABELS, listen_address

DATABASE_PORTS = (POSTGRES_PORT, PGBOUNCER_PORT)

# --- no-public-database-ports ------------------------------------------------------------------


def port_range(port: str | None) -> tuple[int, int]:
    """Hetzner's `port`: "5432", "5000-6000", "any" or absent (all ports)."""
    if not port or port == "any":
        return 1, 65535
    low, _, high = str(port).partition("-")
    return int(low), int(high or low)


def _covers_database_port(port: str | None) -> list[int]:
    low, high = port_range(port)
    return [p for p in DATABASE_PORTS if low <= p <= high]


def _private_or_loopback(ip: str | None) -> bool:
    if not ip:
        return False  # Docker's default bind is every interface
    try:
        address = ipaddress.ip_address(ip)
    except ValueError:
        return False
    return address.is_loopback or is_private(ipaddress.ip_network(address))


def _check_firewall(args: ResourceValidationArgs, report: ReportViolation) -> None:
    """Every inbound rule that reaches a database port, counted together (0.0.0.0/1 + 128.0.0.0/1 is all)."""
    sources: dict[int, list[str]] = {}
    for rule in args.props.get("rules") or []:
        if rule.get("direction") != "in" or rule.get("protocol") not in ("tcp", None):
            continue
        for port in _covers_database_port(rule.get("port")):
            sources.setdefault(port, []).extend(rule.get("sourceIps") or [])
    for port, cidrs in sorted(sources.items()):
        for wide in too_wide(cidrs):
            report(f"firewall {args.name} opens port {port} to {wide} ({', '.join(cidrs)})", None)


def _check_published(args: ResourceValidationArgs, report: ReportViolation) -> None:
    monitoring = component(args.props) in MONITORING_LABELS  # no login: every port of theirs counts
    for binding in args.props.get("ports") or []:
        numbers = {int(binding.get("internal") or 0), int(binding.get("external") or 0)}
        bound = numbers - {0} if monitoring else numbers & set(DATABASE_PORTS)
        if bound and not _private_or_loopback(binding.get("ip")):
            ports = ", ".join(map(str, sorted(bound)))
            report(
                f"container {args.name} publishes {ports} on {binding.get('ip') or '0.0.0.0 (Docker default)'}", None
            )


def cluster_ports(config: Mapping[str, Any] | None) -> tuple[int, ...]:
    """Patroni's REST API and etcd's client and peer ports, as the pack's config names them for a stack
    with hetzner.failover (offline/policy_config.py); none elsewhere (no Patroni, nothing to guard)."""
    return tuple(int(p) for p in (config or {}).get("clusterPorts") or ())


def _private_cidr(cidr: str) -> bool:
    try:
        return is_private(ipaddress.ip_network(cidr, strict=False))
    except ValueError:
        return False  # not a range this check can vouch for


def _check_cluster_ports(args: ResourceValidationArgs, report: ReportViolation) -> None:
    """Patroni's REST API (it can promote and demote) and etcd (it holds who is the leader) from private
    sources only: any public source on them is a way to take the cluster over."""
    ports = cluster_ports(args.get_config())
    for rule in args.props.get("rules") or []:
        if rule.get("direction") != "in" or rule.get("protocol") not in ("tcp", None):
            continue
        low, high = port_range(rule.get("port"))
        covered = [p for p in ports if low <= p <= high]
        public = [cidr for cidr in rule.get("sourceIps") or [] if not _private_cidr(cidr)]
        if covered and public:
            listed = ", ".join(map(str, covered))
            report(f"firewall {args.name} opens Patroni/etcd port {listed} to {', '.join(public)}", None)


def _check_load_balancer_network(args: ResourceValidationArgs, report: ReportViolation) -> None:
    if args.props.get("enablePublicInterface") is not False:  # Hetzner's default is on
        report(f"load balancer network {args.name} leaves the load balancer's public interface on", None)


def check_public_ports(args: ResourceValidationArgs, report: ReportViolation) -> None:
    if args.resource_type == FIREWALL:
        _check_firewall(args, report)
        _check_cluster_ports(args, report)
    elif args.resource_type == CONTAINER:
        _check_published(args, report)
    elif args.resource_type == LOAD_BALANCER_NETWORK:
        _check_load_balancer_network(args, report)


no_public_database_ports = ResourceValidationPolicy(
    name="no-public-database-ports",
    description=(
        "Postgres (5432) and PgBouncer (6432) are never reachable from the whole internet; Patroni's REST API "
        "and etcd only from private addresses; a load balancer only on its private network; an exporter, "
        "Prometheus or Alertmanager container publishes its ports on loopback or private addresses only."
    ),
    enforcement_level=EnforcementLevel.MANDATORY,
    validate=check_public_ports,
    config_schema=PolicyConfigSchema(
        properties={"clusterPorts": {"type": "array", "items": {"type": "integer", "minimum": 1, "maximum": 65535}}}
    ),
    remediation_steps=(
        "Narrow the inbound firewall rules that reach 5432 or 6432 (counted together, at most a /16 of IPv4 or a "
        "/48 of IPv6); publish a container's database port on a loopback or private address, never on Docker's "
        "default (every interface). Open Patroni's and etcd's ports (hetzner.failover) to the private subnet only, "
        "and attach a load balancer with enable_public_interface=False."
    ),
)


# --- host-network-listeners --------------------------------------------------------------------

EVERY_INTERFACE = ("*", "0.0.0.0", "::")


def check_host_network_listeners(args: StackValidationArgs, report: ReportViolation) -> None:
    """A Postgres container on the host's network that listens on every interface is reachable on the
    public one: only behind a firewall whose database rules stay narrow (no-public-database-ports). A load
    balancer in front of the hosts has a public interface until a private-only network attachment turns it
    off: one such attachment per load balancer."""
    balancers = [r for r in args.resources if r.resource_type == LOAD_BALANCER]
    private = [
        r
        for r in args.resources
        if r.resource_type == LOAD_BALANCER_NETWORK and r.props.get("enablePublicInterface") is False
    ]
    if len(private) < len(balancers):
        for balancer in balancers:
            report(
                f"load balancer {balancer.name} has no private-only network attachment (public interface on)",
                balancer.urn,
            )
    _check_monitoring_listeners(args, report)
    if any(r.resource_type == FIREWALL for r in args.resources):
        return
    for server in postgres_servers(args.resources):
        if server.props.get("networkMode") != "host":
            continue
        listen = settings_of(server).get("listen_addresses", "localhost")
        if any(part.strip() in EVERY_INTERFACE for part in listen.split(",")):
            report(
                f"container {server.name} listens on every interface ({listen!r}) with no firewall declared", server.urn
            )


def _check_monitoring_listeners(args: StackValidationArgs, report: ReportViolation) -> None:
    """The exporters, Prometheus and Alertmanager answer anyone who reaches them (no login): on a host's
    network each must name a loopback or private address in --web.listen-address, firewall or not (the
    firewall opens none of their ports; their own default is every interface)."""
    for container in args.resources:
        if container.resource_type != CONTAINER or component(container.props) not in MONITORING_LABELS:
            continue
        if container.props.get("networkMode") != "host":
            continue
        address = listen_address(container.props.get("command") or [])
        if address is None or not _private_or_loopback(address):
            shown = "every interface (no --web.listen-address)" if address is None else repr(address or "")
            report(f"container {container.name} ({component(container.props)}) listens on {shown}", container.urn)


host_network_listeners = StackValidationPolicy(
    name="host-network-listeners",
    description=(
        "A host-network Postgres listening on every interface must sit behind a declared firewall; a host-network "
        "exporter, Prometheus or Alertmanager listens on a loopback or private address only; every load "
        "balancer has a private-only network attachment."
    ),
    enforcement_level=EnforcementLevel.MANDATORY,
    validate=check_host_network_listeners,
    remediation_steps=(
        "Name the addresses Postgres listens on in listen_addresses, or put the host behind a declared firewall "
        "(whose database rules no-public-database-ports keeps narrow). Give each monitoring container a "
        "--web.listen-address on the host's private IP (components/monitoring.py does)."
    ),
)
