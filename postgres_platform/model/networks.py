"""Address ranges (pure): what counts as private, and how much of the internet a set of CIDRs opens."""

from __future__ import annotations

import ipaddress
from collections.abc import Iterable

RFC1918 = tuple(ipaddress.IPv4Network(n) for n in ("10.0.0.0/8", "172.16.0.0/12", "192.168.0.0/16"))
ULA = ipaddress.IPv6Network("fc00::/7")
MAX_OPEN = {4: (2**16, "/16"), 6: (2**80, "/48")}  # the most a set of admin CIDRs may open, in union


def is_private(network: ipaddress.IPv4Network | ipaddress.IPv6Network) -> bool:
    """RFC 1918 or IPv6 ULA. Not `ipaddress`'s is_private: it also counts documentation ranges."""
    if isinstance(network, ipaddress.IPv4Network):
        return any(network.subnet_of(private) for private in RFC1918)
    return network.subnet_of(ULA)


def too_wide(cidrs: Iterable[str]) -> list[str]:
    """ "more than a /16 of IPv4" (or /48 of IPv6) for the union of `cidrs`, counted together.

    A union, so two halves (0.0.0.0/1 and 128.0.0.0/1) are all of IPv4, as they are.
    """
    networks = [ipaddress.ip_network(c, strict=False) for c in cidrs]
    v4 = ipaddress.collapse_addresses(n for n in networks if isinstance(n, ipaddress.IPv4Network))
    v6 = ipaddress.collapse_addresses(n for n in networks if isinstance(n, ipaddress.IPv6Network))
    opened = {4: sum(n.num_addresses for n in v4), 6: sum(n.num_addresses for n in v6)}
    return [
        f"more than a {size} of IPv{version}" for version, (most, size) in MAX_OPEN.items() if opened[version] > most
    ]
