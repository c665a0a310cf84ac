"""API tokens: parsing, constant-time checks, and the access rule of every request.

``PGSTASK_API_TOKENS`` holds comma-separated entries ``ro:<secret>`` (read-only) or
``rw:<secret>`` (read-write); a secret may be given as its SHA-256 instead
(``rw:sha256:<64 hex digits>``) so the raw token never sits in the environment. pgstask keeps
only digests, compares the digest of a presented token with every configured one using
``hmac.compare_digest``, and never logs a token.
"""

from __future__ import annotations

import hashlib
import hmac
import ipaddress
import math
import re
import secrets
import threading
import time
from collections import OrderedDict
from collections.abc import Callable
from dataclasses import dataclass

from pgstask.errors import ConfigurationError

MIN_SECRET_LENGTH = 16
_HEX_DIGEST = re.compile(r"^[0-9a-f]{64}$")


@dataclass(frozen=True, slots=True)
class ApiToken:
    """One configured token: its digest, whether it may write, and a name for messages."""

    digest: bytes
    writable: bool
    name: str

    def __repr__(self) -> str:  # never show the digest either
        return f"ApiToken({self.name!r}, writable={self.writable})"


def new_token() -> str:
    """A fresh random token (256 bits, URL-safe)."""
    return secrets.token_urlsafe(32)


def digest(secret: str) -> bytes:
    """The SHA-256 digest a token is stored and compared as (``sha256:<hex>`` in
    ``PGSTASK_API_TOKENS``)."""
    return hashlib.sha256(secret.encode()).digest()


def parse_tokens(text: str) -> tuple[ApiToken, ...]:
    """The tokens of a ``PGSTASK_API_TOKENS`` value; ``ConfigurationError`` names a bad entry by
    its position, never by its content."""
    tokens = []
    for n, entry in enumerate((e.strip() for e in text.split(",")), start=1):
        if not entry:
            continue
        scope, sep, secret = entry.partition(":")
        if not sep or scope not in ("ro", "rw"):
            raise ConfigurationError(
                f"PGSTASK_API_TOKENS entry {n} must start with 'ro:' (read-only) or 'rw:' "
                "(read-write)"
            )
        if secret.startswith("sha256:"):
            hexdigest = secret.removeprefix("sha256:").lower()
            if not _HEX_DIGEST.match(hexdigest):
                raise ConfigurationError(
                    f"PGSTASK_API_TOKENS entry {n}: sha256: must be followed by 64 hex digits"
                )
            value = bytes.fromhex(hexdigest)
        else:
            if len(secret) < MIN_SECRET_LENGTH:
                raise ConfigurationError(
                    f"PGSTASK_API_TOKENS entry {n} is shorter than {MIN_SECRET_LENGTH} "
                    "characters; make one with `pgstask tokens create`"
                )
            value = digest(secret)
        tokens.append(ApiToken(value, scope == "rw", f"{scope}#{n}"))
    return tuple(tokens)


def find_token(tokens: tuple[ApiToken, ...], presented: str) -> ApiToken | None:
    """The configured token matching ``presented``, checked against all of them in constant
    time per token (no early exit on a match)."""
    candidate = digest(presented)
    found = None
    for token in tokens:
        if hmac.compare_digest(candidate, token.digest):
            found = token
    return found


class FailedAttempts:
    """Failed authentications per client address, to slow down guessing.

    After ``free`` failures, each further attempt from the address is refused until a delay
    that doubles with every failure (``base`` seconds, at most ``maximum``) has passed since
    the last one. Failures older than ``forget_after`` seconds are forgotten. A success does
    not clear them: a holder of a read-only token must not be able to reset its count while
    guessing a read-write one. An IPv6 address counts as its /64. At most ``capacity``
    addresses are remembered, the least recently failed dropped first, so a flood of addresses
    cannot exhaust memory.

    The refusal is for guesses, not for the people who share an address with the guesser (every
    user of one host, everyone behind one proxy): a token that has been accepted from the
    address within ``forget_after`` seconds (``accepted``) is let through while the address is
    refused (``may_pass``), so a signed-in dashboard and a script with its token keep working.
    Any other token, valid or not, is refused without being told apart: a guesser learns
    nothing from a refused guess, and a token already accepted from the address was no secret
    to it.
    """

    def __init__(
        self,
        *,
        free: int = 5,
        base: float = 1.0,
        maximum: float = 60.0,
        forget_after: float = 900.0,
        capacity: int = 10_000,
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        self.free, self.base, self.maximum = free, base, maximum
        self.forget_after, self.capacity = forget_after, capacity
        self._clock = clock
        self._lock = threading.Lock()
        self._seen: OrderedDict[str, tuple[int, float]] = OrderedDict()
        self._accepted: OrderedDict[tuple[str, str], float] = OrderedDict()

    def wait(self, address: str) -> int:
        """Whole seconds (rounded up) before ``address`` may try again; 0 when it may now."""
        address = _counted_as(address)
        with self._lock:
            entry = self._seen.get(address)
            if entry is None:
                return 0
            count, last = entry
            now = self._clock()
            if now - last > self.forget_after:
                del self._seen[address]
                return 0
            if count < self.free:
                return 0
            delay = min(self.base * 2.0 ** min(count - self.free, 30), self.maximum)
            return max(0, math.ceil(last + delay - now))

    def may_pass(self, address: str, token: ApiToken | None) -> bool:
        """Whether ``token`` (``None``: not a valid one) may be used from ``address`` now: it
        was accepted from there recently, or the address is not being refused."""
        if token is not None:
            key = (_counted_as(address), token.name)
            with self._lock:
                last = self._accepted.get(key)
                if last is not None and self._clock() - last <= self.forget_after:
                    return True
        return self.wait(address) == 0

    def accepted(self, address: str, token: ApiToken) -> None:
        """``token`` was accepted from ``address``."""
        key = (_counted_as(address), token.name)
        with self._lock:
            self._accepted.pop(key, None)
            self._accepted[key] = self._clock()
            while len(self._accepted) > self.capacity:
                self._accepted.popitem(last=False)

    def failed(self, address: str) -> None:
        """A wrong token came from ``address``: count it toward the address's delay."""
        address = _counted_as(address)
        with self._lock:
            now = self._clock()
            count, last = self._seen.pop(address, (0, now))
            if now - last > self.forget_after:
                count = 0
            self._seen[address] = (count + 1, now)
            while len(self._seen) > self.capacity:
                self._seen.popitem(last=False)


def _counted_as(address: str) -> str:
    """Whose failures an address's are: an IPv6 address counts as its /64 (one host usually
    holds a whole /64 and could otherwise try from each of its addresses in turn), an
    IPv4-mapped one as the IPv4 address; anything else as itself."""
    try:
        ip = ipaddress.ip_address(address)
    except ValueError:
        return address
    if isinstance(ip, ipaddress.IPv6Address):
        if ip.ipv4_mapped is not None:
            return str(ip.ipv4_mapped)
        return str(ipaddress.IPv6Network((ip, 64), strict=False))
    return str(ip)
