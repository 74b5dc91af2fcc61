"""Endpoint URL guard: which hosts and addresses the server may connect to.

For a shared deployment an endpoint URL is untrusted input: without a guard, anyone with
an account could make the server reach its own loopback services, the private network or
the cloud metadata service (``http://169.254.169.254/``), and read the answer back as an
"upstream error".  Two settings control it (see README "Security and reliability"):

- ``ENDPOINT_BLOCK_PRIVATE``: refuse loopback, private, link-local, CGNAT, multicast,
  reserved and cloud-metadata addresses, however they are written (``2130706433``,
  ``0x7f.1``, ``::ffff:127.0.0.1``) and whatever a host name resolves to.
- ``ENDPOINT_ALLOWED_HOSTS``: when not empty, only these host names (``.example.com``
  also allows its subdomains).

The check is made where the connection is made: a custom httpcore network backend
resolves the host once, checks every address it got, and connects to one of those
checked addresses (the URL's host still drives the Host header, SNI and certificate
checks, which httpcore takes from the request, not from the socket).  So a name that
resolves to a public address for a check and to a private one a moment later (DNS
rebinding) cannot slip through.  Redirects are never followed (the client sets
``follow_redirects=False``).  The in-process demo host ``fake.invalid`` never reaches the
network and is always allowed.

With the guard on, the client gets an explicit transport, so ``HTTP(S)_PROXY``
environment variables are not used for endpoint requests: a proxy would resolve and
connect on its own, out of reach of the check.
"""

from __future__ import annotations

import asyncio
import ipaddress
import socket
from collections.abc import Iterable
from typing import Any
from urllib.parse import unquote

import anyio
import httpcore
import httpx
from django.conf import settings
from django.core.signals import setting_changed
from django.dispatch import receiver

from . import registry
from .events import UpstreamError

IPAddress = ipaddress.IPv4Address | ipaddress.IPv6Address

_v4 = ipaddress.IPv4Network
_v6 = ipaddress.IPv6Network

# Checked first: the most specific reason wins in the message.
METADATA_ADDRESSES = frozenset(
    ipaddress.ip_address(a)
    for a in (
        "169.254.169.254",  # AWS, GCP, Azure, OpenStack, DigitalOcean... instance metadata
        "169.254.170.2",  # AWS ECS task metadata
        "169.254.169.253",  # AWS VPC DNS
        "169.254.169.123",  # AWS time sync
        "100.100.100.200",  # Alibaba Cloud metadata
        "168.63.129.16",  # Azure wire server (a public address!)
        "192.0.0.192",  # Oracle Cloud metadata
        "fd00:ec2::254",  # AWS metadata over IPv6
        "fd00:ec2::23",  # AWS time sync / DNS over IPv6
    )
)

# (network, reason). Explicit rather than ipaddress's is_private/is_global, whose tables
# changed between Python releases.
BLOCKED_NETWORKS: tuple[tuple[ipaddress.IPv4Network | ipaddress.IPv6Network, str], ...] = (
    (_v4("0.0.0.0/8"), "a 'this network' address"),
    (_v4("10.0.0.0/8"), "a private address"),
    (_v4("100.64.0.0/10"), "a carrier-grade NAT (shared) address"),
    (_v4("127.0.0.0/8"), "a loopback address"),
    (_v4("169.254.0.0/16"), "a link-local address"),
    (_v4("172.16.0.0/12"), "a private address"),
    (_v4("192.0.0.0/24"), "a reserved (IETF protocol) address"),
    (_v4("192.0.2.0/24"), "a reserved (documentation) address"),
    (_v4("192.88.99.0/24"), "a reserved (6to4 relay) address"),
    (_v4("192.168.0.0/16"), "a private address"),
    (_v4("198.18.0.0/15"), "a reserved (benchmarking) address"),
    (_v4("198.51.100.0/24"), "a reserved (documentation) address"),
    (_v4("203.0.113.0/24"), "a reserved (documentation) address"),
    (_v4("224.0.0.0/4"), "a multicast address"),
    (_v4("240.0.0.0/4"), "a reserved address"),
    (_v6("::1/128"), "a loopback address"),
    (_v6("::/128"), "the unspecified address"),
    (_v6("::/96"), "a reserved (IPv4-compatible) address"),
    (_v6("64:ff9b:1::/48"), "a reserved (local NAT64) address"),
    (_v6("100::/64"), "a reserved (discard) address"),
    (_v6("2001::/23"), "a reserved (IETF protocol) address"),
    (_v6("2001:db8::/32"), "a reserved (documentation) address"),
    (_v6("3fff::/20"), "a reserved (documentation) address"),
    (_v6("fc00::/7"), "a private (unique local) address"),
    (_v6("fe80::/10"), "a link-local address"),
    (_v6("fec0::/10"), "a link-local (site-local) address"),
    (_v6("ff00::/8"), "a multicast address"),
)
_GLOBAL_UNICAST_V6 = _v6("2000::/3")
_NAT64 = _v6("64:ff9b::/96")
_SIX_TO_FOUR = _v6("2002::/16")

# Never on the network: served in-process by chat.fake_upstream.
INPROCESS_HOSTS = frozenset({"fake.invalid"})


class BlockedAddress(httpcore.ConnectError):
    """A connection the guard refused; httpx reports it as a ``ConnectError`` whose
    ``__cause__`` is this exception."""

    def __init__(self, message: str) -> None:
        super().__init__(message)
        self.message = message


# --------------------------------------------------------------------------- checks


def parse_ip(host: str) -> IPAddress | None:
    """``host`` as an IP address, in every spelling a resolver would accept, else None.

    Besides dotted quads and IPv6 (with or without brackets or a zone), the legacy
    ``inet_aton`` forms: one to four parts, each decimal, hex (``0x``) or octal (leading
    ``0``), the last filling the remaining bytes: ``2130706433``, ``0x7f.1``,
    ``0177.0.0.1``, ``127.1``.
    """
    host = unquote(host).strip()
    if host.startswith("[") and host.endswith("]"):
        host = host[1:-1]
    if ":" in host:
        try:
            # A zone (fe80::1%eth0) does not change what kind of address it is.
            return ipaddress.IPv6Address(host.split("%", 1)[0])
        except ValueError:
            return None
    host = host.removesuffix(".")
    parts = host.split(".")
    if not 1 <= len(parts) <= 4:
        return None
    values = []
    for part in parts:
        try:
            if part[:2].lower() == "0x":
                value = int(part[2:] or "0", 16)
            elif len(part) > 1 and part.startswith("0"):
                value = int(part[1:], 8)
            else:
                if not part.isdigit() or not part.isascii():
                    return None
                value = int(part)
        except ValueError:
            return None
        values.append(value)
    *head, last = values
    if any(v > 255 for v in head) or last >= 256 ** (4 - len(head)):
        return None
    number = 0
    for value in head:
        number = number << 8 | value
    number = number << 8 * (4 - len(head)) | last
    return ipaddress.IPv4Address(number)


def address_problem(address: IPAddress) -> str | None:
    """Why connecting to ``address`` is refused, or None when it is a public address."""
    if address in METADATA_ADDRESSES:
        return "a cloud metadata address"
    if isinstance(address, ipaddress.IPv6Address):
        embedded = address.ipv4_mapped
        if embedded is None and address in _NAT64:
            embedded = ipaddress.IPv4Address(int(address) & 0xFFFFFFFF)
        if embedded is None and address in _SIX_TO_FOUR:
            embedded = address.sixtofour
        if embedded is not None:
            inner = address_problem(embedded)
            return f"{inner} (embedded in {address})" if inner else None
    for network, reason in BLOCKED_NETWORKS:
        if address.version == network.version and address in network:
            return reason
    if isinstance(address, ipaddress.IPv6Address) and address not in _GLOBAL_UNICAST_V6:
        return "a reserved address"
    return None


def _normal_host(host: str) -> str:
    host = host.strip().lower().removesuffix(".")
    if host.startswith("[") and host.endswith("]"):
        host = host[1:-1]
    try:
        return host.encode("idna").decode("ascii")
    except UnicodeError:
        return host


def host_allowed(host: str, allowed: Iterable[str]) -> bool:
    """``host`` matches an entry: exactly, or as a subdomain of a ``.example.com`` entry.
    IP entries match the same address however it is written."""
    name = _normal_host(host)
    ip = parse_ip(name)
    for entry in allowed:
        pattern = _normal_host(entry)
        if not pattern:
            continue
        if ip is not None:
            if parse_ip(pattern) == ip:
                return True
        elif pattern.startswith("."):
            if name == pattern[1:] or name.endswith(pattern):
                return True
        elif name == pattern:
            return True
    return False


def enabled() -> bool:
    return bool(settings.ENDPOINT_BLOCK_PRIVATE or settings.ENDPOINT_ALLOWED_HOSTS)


async def resolve(host: str, port: int) -> list[str]:
    """The addresses ``host`` resolves to (tests replace this function)."""
    infos = await asyncio.get_running_loop().getaddrinfo(
        host, port, type=socket.SOCK_STREAM, proto=socket.IPPROTO_TCP
    )
    return [info[4][0] for info in infos]


async def checked_addresses(host: str, port: int) -> list[str]:
    """Where a connection to ``host`` may go: every address it resolves to, checked.

    Raises ``BlockedAddress`` if the host is not allowed or if ANY of its addresses is
    blocked (a name with one public and one private address is refused, not filtered).
    """
    allowed = settings.ENDPOINT_ALLOWED_HOSTS
    if allowed and not host_allowed(host, allowed):
        raise BlockedAddress(
            f"{host} is not one of the allowed endpoint hosts (ENDPOINT_ALLOWED_HOSTS)"
        )
    literal = parse_ip(host)
    if literal is not None:
        addresses = [literal]
    else:
        try:
            resolved = await resolve(host, port)
        except (OSError, UnicodeError) as exc:
            raise httpcore.ConnectError(f"Could not resolve {host}: {exc}") from exc
        addresses = []
        for raw in resolved:
            address = parse_ip(raw)
            if address is None:
                raise BlockedAddress(f"{host} resolved to {raw!r}, which is not an IP address")
            if address not in addresses:
                addresses.append(address)
        if not addresses:
            raise httpcore.ConnectError(f"Could not resolve {host}: no address")
    if settings.ENDPOINT_BLOCK_PRIVATE:
        for address in addresses:
            problem = address_problem(address)
            if problem is None:
                continue
            where = f"{address} is" if literal is not None else f"{host} resolves to {address},"
            raise BlockedAddress(
                f"{where} {problem}; endpoints on private networks are not allowed here "
                "(ENDPOINT_BLOCK_PRIVATE)"
            )
    return [str(a) for a in addresses]


# --------------------------------------------------------------------------- transport


def inner_backend() -> httpcore.AsyncNetworkBackend:
    """What actually opens sockets (tests replace it to record where connections go)."""
    return httpcore.AnyIOBackend()


class GuardedBackend(httpcore.AsyncNetworkBackend):
    """httpcore's default backend, connecting only to addresses the guard checked."""

    def __init__(self, inner: httpcore.AsyncNetworkBackend | None = None) -> None:
        self.inner = inner or inner_backend()

    async def connect_tcp(
        self,
        host: str,
        port: int,
        timeout: float | None = None,
        local_address: str | None = None,
        socket_options: Iterable[Any] | None = None,
    ) -> httpcore.AsyncNetworkStream:
        try:
            with anyio.fail_after(timeout):
                addresses = await checked_addresses(host, port)
        except TimeoutError as exc:
            raise httpcore.ConnectTimeout(f"Timed out resolving {host}") from exc
        loop = asyncio.get_running_loop()
        deadline = None if timeout is None else loop.time() + timeout
        last: Exception | None = None
        for address in addresses:
            left = None if deadline is None else max(0.0, deadline - loop.time())
            try:
                return await self.inner.connect_tcp(
                    address,
                    port,
                    timeout=left,
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
        timeout: float | None = None,
        socket_options: Iterable[Any] | None = None,
    ) -> httpcore.AsyncNetworkStream:
        raise BlockedAddress("Unix sockets are not allowed for endpoints")

    async def sleep(self, seconds: float) -> None:
        await self.inner.sleep(seconds)


def transport(limits: httpx.Limits) -> httpx.AsyncBaseTransport | None:
    """The transport for endpoint requests: guarded when a guard setting is on, else
    None (httpx's default, environment proxies included)."""
    if not enabled():
        return None
    guarded = httpx.AsyncHTTPTransport(limits=limits)
    pool = guarded._pool
    if not isinstance(pool, httpcore.AsyncConnectionPool) or not hasattr(pool, "_network_backend"):
        # Fail closed if httpx/httpcore change how the backend is held.
        raise RuntimeError("cannot install the endpoint guard on this httpx/httpcore version")
    pool._network_backend = GuardedBackend()
    return guarded


def upstream_error(exc: BaseException) -> UpstreamError | None:
    """The ``UpstreamError`` for an httpx exception caused by the guard, else None."""
    seen: set[int] = set()
    current: BaseException | None = exc
    while current is not None and id(current) not in seen:
        if isinstance(current, BlockedAddress):
            return UpstreamError(message=f"Blocked: {current.message}", type="blocked_address")
        seen.add(id(current))
        current = current.__cause__ or current.__context__
    return None


@receiver(setting_changed)
def _guard_settings_changed(*, setting: str, **kwargs: Any) -> None:
    # Pooled clients were built for the old settings (tests override them).
    if setting in ("ENDPOINT_BLOCK_PRIVATE", "ENDPOINT_ALLOWED_HOSTS"):
        registry.forget_clients()
