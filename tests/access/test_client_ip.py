from __future__ import annotations

import ipaddress

from gateway.access.client_ip import client_address, parse_networks

PROXIES = parse_networks(["10.0.0.0/8", "fd00::/8"])


def addr(text: str) -> ipaddress.IPv4Address | ipaddress.IPv6Address:
    return ipaddress.ip_address(text)


def test_without_trusted_proxies_forwarded_for_is_ignored() -> None:
    assert client_address("203.0.113.9", ["198.51.100.1"], ()) == addr("203.0.113.9")


def test_an_untrusted_peer_cannot_claim_another_address() -> None:
    assert client_address("203.0.113.9", ["198.51.100.1"], PROXIES) == addr("203.0.113.9")


def test_behind_a_trusted_proxy_the_right_most_untrusted_hop_is_the_client() -> None:
    # The client forged "1.2.3.4"; our proxy appended what it saw (198.51.100.7).
    got = client_address("10.0.0.2", ["1.2.3.4, 198.51.100.7"], PROXIES)
    assert got == addr("198.51.100.7")


def test_chains_of_trusted_proxies_and_several_header_fields() -> None:
    got = client_address("10.0.0.2", ["1.2.3.4", "198.51.100.7, 10.1.1.1"], PROXIES)
    assert got == addr("198.51.100.7")


def test_only_trusted_hops_gives_the_left_most() -> None:
    assert client_address("10.0.0.2", ["10.9.9.9, 10.1.1.1"], PROXIES) == addr("10.9.9.9")


def test_a_malformed_hop_where_the_client_should_be_is_unknown() -> None:
    assert client_address("10.0.0.2", ["1.2.3.4, not-an-ip"], PROXIES) is None


def test_ipv4_mapped_and_ipv6_addresses() -> None:
    assert client_address("::ffff:198.51.100.7", [], PROXIES) == addr("198.51.100.7")
    got = client_address("fd00::1", ["2001:db8::5"], PROXIES)
    assert got == addr("2001:db8::5")


def test_no_peer_is_unknown() -> None:
    assert client_address(None, ["1.2.3.4"], PROXIES) is None
    assert client_address("testclient", [], PROXIES) is None
