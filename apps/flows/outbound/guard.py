"""SSRF guard: outbound calls reach only public addresses unless told otherwise.

Flow authors choose the URLs, so without a guard a flow could read cloud metadata
(169.254.169.254), the database or admin services on the private network. The check runs
inside the client's connection objects, on the very addresses the socket connects to after
DNS resolution: no redirect, and no DNS answer that changes between a check and the
connect (DNS rebinding), can slip past it.
"""

from __future__ import annotations

import http.client
import ipaddress
import socket
import ssl
import sys
import threading
import time
from collections.abc import Iterable
from dataclasses import dataclass
from typing import Any

from django.conf import settings
from urllib3.exceptions import ConnectTimeoutError, NameResolutionError, NewConnectionError
from urllib3.util import wait_for_read
from urllib3.util.connection import allowed_gai_family
from urllib3.util.ssl_ import create_urllib3_context

from apps.flows.outbound.errors import BlockedAddress, OutboundError
from apps.flows.outbound.origin import Origin

IPAddress = ipaddress.IPv4Address | ipaddress.IPv6Address
IPNetwork = ipaddress.IPv4Network | ipaddress.IPv6Network
AddrInfo = tuple[socket.AddressFamily, socket.SocketKind, int, str, tuple[Any, ...]]

# NAT64 gateways forward 64:ff9b::a.b.c.d to the IPv4 address a.b.c.d.
_NAT64 = ipaddress.IPv6Network("64:ff9b::/96")


def resolve(host: str, port: int) -> list[AddrInfo]:
    """Every address `host` resolves to.

    Module-level so tests can fake DNS answers (e.g. a public name resolving to 127.0.0.1).
    """
    return socket.getaddrinfo(host.strip("[]"), port, allowed_gai_family(), socket.SOCK_STREAM)


def _effective_address(address: IPAddress) -> IPAddress:
    """The IPv4 address an IPv6 address really reaches, when it embeds one."""
    if isinstance(address, ipaddress.IPv6Address):
        if address.ipv4_mapped is not None:
            return address.ipv4_mapped
        if address in _NAT64:
            return ipaddress.IPv4Address(int(address) & 0xFFFFFFFF)
    return address


def address_kind(address: str | IPAddress) -> str | None:
    """Why `address` needs permission ("loopback", "private", ...), or None when it is public.

    IPv4-mapped (::ffff:127.0.0.1) and NAT64 addresses are judged by the IPv4 address they
    reach. The order picks the most telling name: ::1 is "loopback" rather than "reserved".
    """
    ip = _effective_address(ipaddress.ip_address(address) if isinstance(address, str) else address)
    if ip.is_unspecified:
        return "unspecified"
    if ip.is_loopback:
        return "loopback"
    if ip.is_link_local:
        return "link-local"
    if ip.is_multicast:
        return "multicast"
    if ip.is_reserved:
        return "reserved"
    if ip.is_private:
        return "private"
    if isinstance(ip, ipaddress.IPv6Address) and ip.is_site_local:
        return "site-local"
    if not ip.is_global:
        return "non-public"
    return None


def _normalize_host(host: str) -> str:
    return host.strip("[]").lower()


def refusal_message(host: str, address: IPAddress, kind: str) -> str:
    shown = host if _normalize_host(host) == str(address) else f"{host} ({address})"
    article = "an" if kind[0] in "aeiou" else "a"
    return (
        f"Refused to connect to {shown}: it is {article} {kind} address. Outbound calls to "
        "private networks are off; set FLOWSITE_ALLOW_PRIVATE_NETWORKS=1 or add the host to "
        "the connection's allowed private hosts."
    )


@dataclass(frozen=True)
class AddressPolicy:
    """Which non-public destinations one connection may reach, from its allowlist.

    A host name entry permits that host (as written in the URL) whatever it resolves to; a
    CIDR entry permits resolved addresses inside it. A bare IP address is a host name entry,
    so allowing "127.0.0.1" does not allow "localhost".
    """

    hosts: frozenset[str] = frozenset()
    networks: tuple[IPNetwork, ...] = ()

    @classmethod
    def from_allowlist(cls, entries: Iterable[str]) -> AddressPolicy:
        hosts: set[str] = set()
        networks: list[IPNetwork] = []
        for raw in entries:
            entry = raw.strip()
            if "/" not in entry:
                hosts.add(_normalize_host(entry))
                continue
            try:
                networks.append(ipaddress.ip_network(entry, strict=False))
            except ValueError as exc:
                raise OutboundError(
                    f"Invalid allowed private host {entry!r}: {exc}. Use a host name or a "
                    "network in CIDR notation such as 10.0.0.0/8."
                ) from exc
        return cls(hosts=frozenset(hosts), networks=tuple(networks))

    def permitted(self, host: str, candidates: list[AddrInfo]) -> list[AddrInfo]:
        """The candidates `host` may connect to; BlockedAddress when some exist but none may.

        The setting is read on every connect so that it can change without a restart (and
        tests can override it).
        """
        if settings.FLOWSITE_ALLOW_PRIVATE_NETWORKS or _normalize_host(host) in self.hosts:
            return candidates
        permitted: list[AddrInfo] = []
        refusal: str | None = None
        for candidate in candidates:
            ip = _effective_address(ipaddress.ip_address(candidate[4][0]))
            kind = address_kind(ip)
            if kind is None or any(ip in network for network in self.networks):
                permitted.append(candidate)
            elif refusal is None:
                refusal = refusal_message(host, ip, kind)
        if refusal is not None and not permitted:
            raise BlockedAddress(refusal)
        return permitted


class _Deadline:
    """A socket whose receives and sends all end by one deadline (time.monotonic()), however
    the answer arrives or the request leaves. A timeout bounds one receive or send only: a
    server that sends its status line and headers a byte at a time, or reads a large body a
    little at a time, would keep http.client past any deadline."""

    deadline: float | None = None

    def send(self, *args, **kwargs):
        self._within_deadline()
        return super().send(*args, **kwargs)

    def sendall(self, *args, **kwargs):  # TLS: a loop of send(); plain: bounded as a whole
        self._within_deadline()
        return super().sendall(*args, **kwargs)

    def recv_into(self, *args, **kwargs):
        self._within_deadline()
        return super().recv_into(*args, **kwargs)

    def recv(self, *args, **kwargs):
        self._within_deadline()
        return super().recv(*args, **kwargs)

    def _within_deadline(self) -> None:
        if self.deadline is not None:
            remaining = self.deadline - time.monotonic()
            if remaining <= 0:
                raise TimeoutError("timed out")
            self.settimeout(remaining)


class _DeadlineSocket(_Deadline, socket.socket):
    pass


class _DeadlineSSLSocket(_Deadline, ssl.SSLSocket):
    pass


class GuardedHTTPConnection(http.client.HTTPConnection):
    """An HTTP connection that resolves its host itself and connects only where permitted.

    `self.host` stays the name from the URL, so the Host header, TLS SNI and certificate
    checks are unchanged; only the address the socket connects to is vetted. http.client
    connects on the first request, and again after the server closed the connection.
    """

    def __init__(self, host: str, port: int, *, address_policy: AddressPolicy) -> None:
        super().__init__(host, port)
        self.address_policy = address_policy
        self.deadline: float | None = None

    def connect(self) -> None:
        self.sock = self._guarded_socket()

    def set_timeout(self, seconds: float) -> None:
        """The time the next connect or send may take, and by when every receive until the
        next call must be done."""
        self.timeout = seconds
        self.deadline = time.monotonic() + seconds
        if self.sock is not None:
            self.sock.settimeout(seconds)
            self.sock.deadline = self.deadline

    @property
    def is_connected(self) -> bool:
        """Connected, and not closed by the server meanwhile (nothing to read while idle)."""
        return self.sock is not None and not wait_for_read(self.sock, timeout=0.0)

    def _guarded_socket(self) -> socket.socket:
        try:
            candidates = resolve(self.host, self.port)
        except socket.gaierror as exc:
            raise NameResolutionError(self.host, self, exc) from exc
        last_error = OSError("the host name resolved to no address")
        for family, kind, proto, _, sockaddr in self.address_policy.permitted(
            self.host, candidates
        ):
            sock = _DeadlineSocket(family, kind, proto)
            sock.deadline = self.deadline
            try:
                sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
                sock.settimeout(self.timeout)
                sock.connect(sockaddr)
            except TimeoutError as exc:
                sock.close()
                raise ConnectTimeoutError(
                    self, f"Connection to {self.host} timed out. (connect timeout={self.timeout})"
                ) from exc
            except OSError as exc:
                sock.close()
                last_error = exc
                continue
            sys.audit("http.client.connect", self, self.host, self.port)
            return sock
        raise NewConnectionError(
            self, f"Failed to establish a new connection: {last_error}"
        ) from last_error


class GuardedHTTPSConnection(GuardedHTTPConnection):
    """The HTTPS variant: TLS over the guarded socket, the certificate verified against the
    system's trust store (or SSL_CERT_FILE) and the URL's host name."""

    default_port = http.client.HTTPS_PORT

    def connect(self) -> None:
        super().connect()
        self.sock = _tls_context().wrap_socket(self.sock, server_hostname=self.host)
        self.sock.deadline = self.deadline


def _tls_context() -> ssl.SSLContext:
    """urllib3's context, as its connections had it: certificates required and checked
    against the host name (never its common name alone), TLS 1.2 or newer, no compression,
    no session tickets; the system's trust store (or SSL_CERT_FILE) read anew for each
    connection, so a changed one takes effect."""
    context = create_urllib3_context(cert_reqs=ssl.CERT_REQUIRED)
    context.load_default_certs()
    context.set_alpn_protocols(["http/1.1"])
    context.sslsocket_class = _DeadlineSSLSocket
    return context


class GuardedPool:
    """One configured connection's kept-alive guarded connections, by origin.

    The client reads every response to its end before it gives the connection back, so a
    connection is idle, or in exactly one call's hands. An idle connection the server
    closed is noticed (it has something to read: the end) and replaced.
    """

    # Origins whose idle connections are kept: a connection's calls go to its own origin,
    # and only redirects lead elsewhere.
    MAX_ORIGINS = 10

    def __init__(self, address_policy: AddressPolicy, maxsize: int) -> None:
        self.address_policy = address_policy
        self.maxsize = maxsize
        self._idle: dict[Origin, list[GuardedHTTPConnection]] = {}
        self._lock = threading.Lock()
        self._closed = False

    def take(self, origin: Origin) -> GuardedHTTPConnection:
        """An idle connection to `origin` that is still open, else a new (unconnected) one."""
        with self._lock:
            idle = self._idle.get(origin)
            connection = idle.pop() if idle else None
        if connection is not None:
            if connection.is_connected:  # not closed by either side while idle
                return connection
            connection.close()
        scheme, host, port = origin
        kind = GuardedHTTPSConnection if scheme == "https" else GuardedHTTPConnection
        # http.client brackets an IPv6 address in the Host header itself.
        return kind(host.strip("[]"), port, address_policy=self.address_policy)

    def give(self, origin: Origin, connection: GuardedHTTPConnection) -> None:
        """Keep a connection whose response was read to its end, for the next call."""
        with self._lock:
            idle = self._idle.get(origin)
            if idle is None and not self._closed and len(self._idle) < self.MAX_ORIGINS:
                idle = self._idle[origin] = []
            if idle is not None and not self._closed and len(idle) < self.maxsize:
                idle.append(connection)
                return
        connection.close()

    def close(self) -> None:
        """Close the idle connections; those in use are closed when they are given back."""
        with self._lock:
            self._closed = True
            idle = [connection for kept in self._idle.values() for connection in kept]
            self._idle.clear()
        for connection in idle:
            connection.close()
