"""Reachability: no database port open to the internet, no host-network Postgres on every interface unguarded."""

from __future__ import annotations

import ipaddress

from pulumi_policy import (
    EnforcementLevel,
    ReportViolation,
    ResourceValidationArgs,
    ResourceValidationPolicy,
    StackValidationArgs,
    StackValidationPolicy,
)

from policy.resources import CONTAINER, FIREWALL, postgres_servers, settings_of
from postgres_platform.model.names import PGBOUNCER_PORT, POSTGRES_PORT
from postgres_platform.model.networks import is_private, too_wide

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
    for binding in args.props.get("ports") or []:
        bound = {int(binding.get("internal") or 0), int(binding.get("external") or 0)} & set(DATABASE_PORTS)
        if bound and not _private_or_loopback(binding.get("ip")):
            ports = ", ".join(map(str, sorted(bound)))
            report(
                f"container {args.name} publishes {ports} on {binding.get('ip') or '0.0.0.0 (Docker default)'}", None
            )


def check_public_ports(args: ResourceValidationArgs, report: ReportViolation) -> None:
    if args.resource_type == FIREWALL:
        _check_firewall(args, report)
    elif args.resource_type == CONTAINER:
        _check_published(args, report)


no_public_database_ports = ResourceValidationPolicy(
    name="no-public-database-ports",
    description="Postgres (5432) and PgBouncer (6432) are never reachable from the whole internet.",
    enforcement_level=EnforcementLevel.MANDATORY,
    validate=check_public_ports,
    remediation_steps=(
        "Narrow the inbound firewall rules that reach 5432 or 6432 (counted together, at most a /16 of IPv4 or a "
        "/48 of IPv6); publish a container's database port on a loopback or private address, never on Docker's "
        "default (every interface)."
    ),
)


# --- host-network-listeners --------------------------------------------------------------------

EVERY_INTERFACE = ("*", "0.0.0.0", "::")


def check_host_network_listeners(args: StackValidationArgs, report: ReportViolation) -> None:
    """A Postgres container on the host's network that listens on every interface is reachable on the
    public one: only behind a firewall whose database rules stay narrow (no-public-database-ports)."""
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


host_network_listeners = StackValidationPolicy(
    name="host-network-listeners",
    description="A host-network Postgres listening on every interface must sit behind a declared firewall.",
    enforcement_level=EnforcementLevel.MANDATORY,
    validate=check_host_network_listeners,
    remediation_steps=(
        "Name the addresses Postgres listens on in listen_addresses, or put the host behind a declared firewall "
        "(whose database rules no-public-database-ports keeps narrow)."
    ),
)
