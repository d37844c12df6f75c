"""The address a request really came from, for IP allowlists.

``X-Forwarded-For`` is written by whoever sent the request, so it is believed only when
the direct peer is one of our own proxies (``AccessSettings.trusted_proxies``). Each
proxy appends the address it received the request from, so the list is read from the
right: the first address that is *not* a trusted proxy is the client. Anything to its
left was supplied by that client and is ignored. Without trusted proxies the header is
ignored entirely and the TCP peer is the client.
"""

from __future__ import annotations

import ipaddress
from collections.abc import Iterable, Sequence

IPAddress = ipaddress.IPv4Address | ipaddress.IPv6Address
IPNetwork = ipaddress.IPv4Network | ipaddress.IPv6Network


def parse_networks(cidrs: Iterable[str]) -> tuple[IPNetwork, ...]:
    """CIDRs (or single addresses) to networks; a bad entry raises ``ValueError``."""
    return tuple(ipaddress.ip_network(cidr.strip(), strict=False) for cidr in cidrs)


def parse_address(text: str) -> IPAddress | None:
    """An address, IPv4-mapped IPv6 unwrapped (``::ffff:10.0.0.1`` is ``10.0.0.1``)."""
    try:
        address = ipaddress.ip_address(text.strip())
    except ValueError:
        return None
    if isinstance(address, ipaddress.IPv6Address) and address.ipv4_mapped is not None:
        return address.ipv4_mapped
    return address


def in_networks(address: IPAddress, networks: Sequence[IPNetwork]) -> bool:
    return any(address.version == net.version and address in net for net in networks)


def client_address(
    peer: str | None, forwarded_for: Sequence[str], trusted: Sequence[IPNetwork]
) -> IPAddress | None:
    """The client's address, or ``None`` when it cannot be known.

    ``forwarded_for`` holds every ``X-Forwarded-For`` field value in order. ``None`` comes
    back for a peer that is not an IP address (a Unix socket) or an unparsable forwarded
    entry standing where the client should be: a request from an unknown address fails
    any allowlist rather than passing it."""
    address = parse_address(peer) if peer else None
    if address is None or not trusted or not in_networks(address, trusted):
        return address
    hops = [hop for value in forwarded_for for hop in value.split(",") if hop.strip()]
    for hop in reversed(hops):
        hop_address = parse_address(hop)
        if hop_address is None:
            return None
        if not in_networks(hop_address, trusted):
            return hop_address
        address = hop_address
    return address  # every hop is one of ours: the left-most is the best we know
