"""Where a webhook may go: public addresses only, unless the operator says otherwise.

A webhook is a signed POST the gateway sends from inside its own network to a URL an
operator typed in. Pointed at ``http://127.0.0.1:6379/``, the metadata service or a
private host, it would make the gateway a proxy into places the URL's author cannot
reach. So a URL is checked twice:

* when it is written (``gateway resellers create/update --webhook-url``, ``check_url``):
  http(s) only, no ``user:password@``, no numeric host other than a plain IP address
  (``2130706433``, ``0x7f000001``, ``017700000001``, ``127.1`` are refused, not
  guessed at), and an IP address must be allowed (``address_problem``);
* every time it is sent to (``CheckedBackend``): the host name is resolved, *every*
  address it resolves to is checked, and the connection goes to a checked address, so a
  name that resolves to a public address when written and to ``127.0.0.1`` later (DNS
  rebinding) is refused, and no second resolution can differ from the checked one.

Always refused: unspecified (``0.0.0.0``, ``::``), multicast, link-local (which holds
the cloud metadata address ``169.254.169.254``), ``fd00:ec2::254``, reserved and
broadcast addresses. Refused unless ``orders.webhook_allow_private_targets``: everything
else that is not globally routable (loopback, RFC 1918, shared 100.64/10, unique local
fc00::/7, ``localhost`` names). IPv6 addresses that carry an IPv4 address (mapped
``::ffff:a.b.c.d``, compatible ``::a.b.c.d``, 6to4, NAT64 ``64:ff9b::/96``) are judged
by that IPv4 address.
"""

from __future__ import annotations

import asyncio
import re
import socket
from collections.abc import Awaitable, Callable, Iterable
from ipaddress import IPv4Address, IPv4Network, IPv6Address, IPv6Network, ip_address
from urllib.parse import urlsplit

import httpcore

IPAddress = IPv4Address | IPv6Address
Resolver = Callable[[str, int], Awaitable[list[str]]]
"""``(host, port)`` → the addresses to connect to, as text (``getaddrinfo`` by default)."""

METADATA_ADDRESSES = frozenset({ip_address("169.254.169.254"), ip_address("fd00:ec2::254")})
_NAT64 = IPv6Network("64:ff9b::/96")
_IPV4_COMPATIBLE = IPv6Network("::/96")
_BROADCAST = IPv4Address("255.255.255.255")
_THIS_NETWORK = IPv4Network("0.0.0.0/8")  # "this host on this network": reaches the gateway
# What inet_aton would read as an IPv4 address: decimal, octal or hex parts, 1 to 4.
_NUMERIC_HOST = re.compile(r"^(0x[0-9a-f]*|[0-9]+)(\.(0x[0-9a-f]*|[0-9]+)){0,3}\.?$")


class TargetRefused(ValueError):
    """A webhook URL or address the gateway will not send to (the message says why)."""


def _embedded_ipv4(address: IPv6Address) -> IPv4Address | None:
    if address.ipv4_mapped is not None:
        return address.ipv4_mapped
    if address.sixtofour is not None:
        return address.sixtofour
    if address in _NAT64 or (address in _IPV4_COMPATIBLE and int(address) > 1):
        return IPv4Address(int(address) & 0xFFFFFFFF)
    return None


def address_problem(address: IPAddress, *, allow_private: bool) -> str | None:
    """Why ``address`` may not receive webhooks, or ``None`` when it may."""
    if isinstance(address, IPv6Address):
        embedded = _embedded_ipv4(address)
        if embedded is not None:
            return address_problem(embedded, allow_private=allow_private)
    if address.is_unspecified or address in _THIS_NETWORK:
        return "an unspecified address"
    if address.is_multicast:
        return "a multicast address"
    if address in METADATA_ADDRESSES or address.is_link_local:
        return "a link-local or cloud metadata address"
    if (address.is_reserved and not address.is_loopback) or address == _BROADCAST:
        return "a reserved address"
    if not allow_private and not address.is_global:
        return "a loopback, private or otherwise non-public address"
    return None


def check_url(url: str, *, allow_private: bool) -> str:
    """The host of a webhook URL that may be used; ``TargetRefused`` otherwise.

    Checks what can be checked without the network; the addresses a name resolves to
    are checked when sending (``CheckedBackend``)."""
    try:
        parts = urlsplit(url)
        parts.port  # noqa: B018 - raises ValueError on a bad port
    except ValueError as exc:
        raise TargetRefused(f"not a valid URL ({exc})") from exc
    if parts.scheme not in ("http", "https"):
        raise TargetRefused("the URL must start with http:// or https://")
    if "@" in parts.netloc:
        raise TargetRefused("the URL must not carry a user name or password (user:pw@)")
    host = (parts.hostname or "").rstrip(".")
    if not host:
        raise TargetRefused("the URL has no host")
    if "%" in host:
        raise TargetRefused("an IPv6 zone id is not allowed in the host")
    try:
        address = ip_address(host)
    except ValueError:
        address = None
    if address is not None:
        problem = address_problem(address, allow_private=allow_private)
        if problem is not None:
            raise TargetRefused(f"the host is {problem}")
    elif _NUMERIC_HOST.match(host):
        raise TargetRefused("a numeric host must be written as a plain IP address")
    elif not allow_private and (host == "localhost" or host.endswith(".localhost")):
        raise TargetRefused("the host is a loopback name")
    return host


async def system_resolver(host: str, port: int) -> list[str]:
    """Every address ``host`` resolves to (the system resolver, without blocking)."""
    infos = await asyncio.get_running_loop().getaddrinfo(host, port, type=socket.SOCK_STREAM)
    return list(dict.fromkeys(str(info[4][0]) for info in infos))


async def checked_addresses(
    host: str, port: int, *, allow_private: bool, resolve: Resolver
) -> list[str]:
    """The addresses of ``host`` when every one of them may receive webhooks (one bad
    address refuses the name: which one a connection would reach is not ours to pick)."""
    try:
        found = await resolve(host, port)
    except OSError as exc:
        raise TargetRefused(f"the host could not be resolved ({type(exc).__name__})") from exc
    if not found:
        raise TargetRefused("the host resolves to no address")
    for text in found:
        try:
            address = ip_address(text)
        except ValueError as exc:
            raise TargetRefused("the host resolves to something that is no address") from exc
        problem = address_problem(address, allow_private=allow_private)
        if problem is not None:
            raise TargetRefused(f"the host resolves to {problem}")
    return found


class TargetRefusedError(httpcore.ConnectError):
    """Raised where a connection would be made; httpx turns it into ``ConnectError``
    with this as its ``__cause__``."""


class CheckedBackend(httpcore.AsyncNetworkBackend):
    """An httpcore network backend that connects only to checked addresses.

    The connection pool asks it for a TCP stream to the URL's host; it resolves the host
    once, checks every address and connects to those addresses (TLS is then started by
    httpcore with the host *name*, so certificates are verified against the name). No
    other resolution happens, so what was checked is what is reached."""

    def __init__(self, *, allow_private: bool, resolve: Resolver = system_resolver) -> None:
        self._allow_private = allow_private
        self._resolve = resolve
        self._inner = httpcore.AnyIOBackend()

    async def connect_tcp(
        self,
        host: str,
        port: int,
        timeout: float | None = None,  # noqa: ASYNC109 - httpcore's interface
        local_address: str | None = None,
        socket_options: Iterable[httpcore.SOCKET_OPTION] | None = None,
    ) -> httpcore.AsyncNetworkStream:
        try:
            async with asyncio.timeout(timeout):
                addresses = await checked_addresses(
                    host, port, allow_private=self._allow_private, resolve=self._resolve
                )
        except TargetRefused as exc:
            raise TargetRefusedError(str(exc)) from exc
        except TimeoutError as exc:
            raise httpcore.ConnectTimeout("resolving the webhook host timed out") from exc
        last: Exception | None = None
        for address in addresses:
            try:
                return await self._inner.connect_tcp(
                    address,
                    port,
                    timeout=timeout,
                    local_address=local_address,
                    socket_options=socket_options,
                )
            except (httpcore.ConnectError, httpcore.ConnectTimeout) as exc:
                last = exc
        assert last is not None
        raise last

    async def connect_unix_socket(
        self,
        path: str,
        timeout: float | None = None,  # noqa: ASYNC109 - httpcore's interface
        socket_options: Iterable[httpcore.SOCKET_OPTION] | None = None,
    ) -> httpcore.AsyncNetworkStream:
        raise TargetRefusedError("webhooks are never sent over a unix socket")

    async def sleep(self, seconds: float) -> None:
        await self._inner.sleep(seconds)
