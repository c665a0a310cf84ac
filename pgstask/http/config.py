"""Settings of the HTTP API, read from ``PGSTASK_API_*`` variables next to the core ``Settings``."""

from __future__ import annotations

import dataclasses
import os
from collections.abc import Mapping

from pgstask.errors import ConfigurationError
from pgstask.http.auth import ApiToken, parse_tokens

LOOPBACK_HOSTS = ("127.0.0.1", "localhost", "::1", "[::1]")


@dataclasses.dataclass(frozen=True, slots=True)
class HttpSettings:
    """What the app enforces. Sizes are bytes."""

    #: Accepted bearer tokens (``PGSTASK_API_TOKENS``).
    tokens: tuple[ApiToken, ...] = ()
    #: Host header values the app answers (``PGSTASK_API_ALLOWED_HOSTS``); ``*.example.com`` works.
    allowed_hosts: tuple[str, ...] = LOOPBACK_HOSTS
    #: Largest JSON body.
    max_body: int = 1024 * 1024
    #: Largest upload (single request or the sum of a chunked one), unless a worker allows less.
    max_upload: int = 100 * 1024 * 1024
    #: Seconds a worker row stays in the resolution cache.
    worker_cache_ttl: float = 5.0

    @classmethod
    def from_env(cls, env: Mapping[str, str] | None = None) -> HttpSettings:
        env = os.environ if env is None else env
        defaults = cls()
        hosts_raw = env.get("PGSTASK_API_ALLOWED_HOSTS", "").strip()
        hosts = tuple(h.strip() for h in hosts_raw.split(",") if h.strip())
        return cls(
            tokens=parse_tokens(env.get("PGSTASK_API_TOKENS", "")),
            allowed_hosts=hosts or defaults.allowed_hosts,
            max_body=_size(env, "PGSTASK_API_MAX_BODY", defaults.max_body),
            max_upload=_size(env, "PGSTASK_API_MAX_UPLOAD", defaults.max_upload),
        )

    def replace(self, **changes: object) -> HttpSettings:
        return dataclasses.replace(self, **changes)  # type: ignore[arg-type]


def _size(env: Mapping[str, str], name: str, default: int) -> int:
    raw = env.get(name, "").strip()
    if not raw:
        return default
    try:
        value = int(raw)
    except ValueError:
        raise ConfigurationError(f"{name}={raw!r} is not a whole number of bytes") from None
    if value <= 0:
        raise ConfigurationError(f"{name} must be positive, not {value}")
    return value
