"""Outbound HTTP: the POST of a webhook delivery, with its address check (no SSRF).

A webhook's URL comes from whoever may add webhooks; the daemon that POSTs to it sits inside the
network. So before connecting, ``post`` resolves the host and refuses the request if any address
it resolves to is not a public unicast one (loopback, private, link-local, carrier-grade NAT,
multicast, reserved, unspecified, IPv4-mapped forms of those…), unless ``allow_private``
(``PGSTASK_WEBHOOK_ALLOW_PRIVATE``). It then connects to the address it checked, not to the name
(a second lookup could answer otherwise: DNS rebinding); the name is still sent as ``Host`` and,
for https, as the TLS server name the certificate is verified against.

No redirect is followed (a 3xx is an answer like any other), no proxy is used, and the answer's
body is read up to ``max_response`` bytes, within the same ``timeout`` as the rest: the whole
request, from the lookup to the last byte read, takes at most ``timeout`` seconds.
"""

from __future__ import annotations

import http.client
import ipaddress
import socket
import ssl
import time
from collections.abc import Mapping
from dataclasses import dataclass
from urllib.parse import urlsplit

from pgstask.errors import PgstaskError

#: Bytes of an answer's body read at most (the rest is not read).
MAX_RESPONSE = 64 * 1024
Address = ipaddress.IPv4Address | ipaddress.IPv6Address


class AddressRefused(PgstaskError):
    """The URL's host is, or resolves to, an address webhooks may not reach."""


@dataclass(frozen=True, slots=True)
class Answer:
    """What the receiver answered: its status, reason and the start of its body."""

    status: int
    reason: str
    body: bytes
    #: The body was longer than what was read.
    truncated: bool


def refusal(address: Address) -> str | None:
    """Why a webhook may not reach ``address``, or None for a public unicast address."""
    if isinstance(address, ipaddress.IPv6Address):
        mapped = address.ipv4_mapped or address.sixtofour
        if mapped is not None:
            return refusal(mapped)
    for kind in ("loopback", "link_local", "multicast", "unspecified", "reserved", "private"):
        if getattr(address, f"is_{kind}"):
            return f"a {kind.replace('_', '-')} address"
    if not address.is_global:
        return "not a public address"
    return None


def resolve(host: str, port: int, *, allow_private: bool) -> list[Address]:
    """The addresses of ``host``; ``AddressRefused`` if one of them may not be reached (all are
    checked: which one a connection would use is not ours to choose), ``OSError`` if the name
    does not resolve."""
    infos = socket.getaddrinfo(host, port, type=socket.SOCK_STREAM, proto=socket.IPPROTO_TCP)
    addresses = list(dict.fromkeys(ipaddress.ip_address(info[4][0]) for info in infos))
    if not allow_private:
        for address in addresses:
            why = refusal(address)
            if why is not None:
                raise AddressRefused(
                    f"{host} resolves to {address}, {why}: webhooks may not reach it (set "
                    "PGSTASK_WEBHOOK_ALLOW_PRIVATE=1 to allow non-public addresses)"
                )
    return addresses


def post(
    url: str,
    body: bytes,
    headers: Mapping[str, str],
    *,
    timeout: float,
    allow_private: bool = False,
    max_response: int = MAX_RESPONSE,
) -> Answer:
    """POST ``body`` to ``url`` (http or https) at the address ``resolve`` checked; the answer.
    ``AddressRefused`` before any connection to a refused address; ``OSError`` (``TimeoutError``
    included) or ``http.client.HTTPException`` when the request cannot be made or answered."""
    deadline = time.monotonic() + timeout
    parts = urlsplit(url)
    https = parts.scheme.lower() == "https"
    host = parts.hostname or ""
    port = parts.port or (443 if https else 80)
    addresses = resolve(host, port, allow_private=allow_private)
    path = (parts.path or "/") + (f"?{parts.query}" if parts.query else "")
    last: OSError | None = None
    for address in addresses:
        conn = _connection(https, host, port, str(address), _left(deadline))
        try:
            conn.request("POST", path, body=body, headers=dict(headers))
        except OSError as exc:  # the next address, as a browser would
            conn.close()
            last = exc
            continue
        try:
            return _read(conn, deadline, max_response)
        finally:
            conn.close()
    raise last or OSError(f"{host} has no address")


def _left(deadline: float) -> float:
    left = deadline - time.monotonic()
    if left <= 0:
        raise TimeoutError("the webhook's timeout passed")
    return left


def _read(conn: http.client.HTTPConnection, deadline: float, limit: int) -> Answer:
    sock = conn.sock  # (the connection lets go of it once the answer is to close it)
    assert sock is not None
    sock.settimeout(_left(deadline))
    response = conn.getresponse()
    chunks: list[bytes] = []
    size = 0
    while size <= limit:
        sock.settimeout(_left(deadline))
        chunk = response.read1(min(16384, limit + 1 - size))
        if not chunk:
            break
        chunks.append(chunk)
        size += len(chunk)
    data = b"".join(chunks)
    return Answer(response.status, response.reason, data[:limit], size > limit)


def _connection(
    https: bool, host: str, port: int, address: str, timeout: float
) -> http.client.HTTPConnection:
    if https:
        return _PinnedHTTPS(host, port, address=address, timeout=timeout)
    return _PinnedHTTP(host, port, address=address, timeout=timeout)


class _PinnedHTTP(http.client.HTTPConnection):
    """An HTTP connection to ``address``, with ``host`` as the Host header."""

    def __init__(self, host: str, port: int, *, address: str, timeout: float) -> None:
        super().__init__(host, port, timeout=timeout)
        self.address = address

    def connect(self) -> None:
        """Connect to the checked address, never to a fresh lookup of the name."""
        self.sock = socket.create_connection((self.address, self.port), self.timeout)
        self.sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)


class _PinnedHTTPS(http.client.HTTPSConnection):
    """An HTTPS connection to ``address``; the certificate is verified against ``host``."""

    def __init__(self, host: str, port: int, *, address: str, timeout: float) -> None:
        super().__init__(host, port, timeout=timeout, context=ssl.create_default_context())
        self.address = address

    def connect(self) -> None:
        """Connect to the checked address, then TLS with ``host`` as the server name."""
        sock = socket.create_connection((self.address, self.port), self.timeout)
        self.sock = self._context.wrap_socket(sock, server_hostname=self.host)  # type: ignore[attr-defined]
