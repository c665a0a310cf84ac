"""Settings of the HTTP API, read from ``PGSTASK_API_*`` variables next to the core ``Settings``."""

from __future__ import annotations

import dataclasses
import ipaddress
import os
from collections.abc import Mapping

from pgstask.errors import ConfigurationError
from pgstask.http.auth import ApiToken, parse_tokens

LOOPBACK_HOSTS = ("127.0.0.1", "localhost", "::1", "[::1]")


@dataclasses.dataclass(frozen=True, slots=True)
class AlertThresholds:
    """When ``/stask/performance/alerts`` raises an alert. Rates in %, times in seconds."""

    #: Success rate (completed ÷ completed + failed, last hour) below this: warning; below half
    #: of it: critical. Judged only with at least ``min_finished`` finished tasks.
    min_success_rate: float = 95.0
    min_finished: int = 10
    #: Average duration (last hour) above this.
    max_average_duration: float = 300.0
    #: Largest peak memory of a task (last hour), bytes.
    max_memory: int = 512 * 1024 * 1024
    #: The oldest due pending task has waited longer than this: the backlog grows.
    max_backlog_age: float = 300.0
    #: A task has been running longer than this.
    stuck_after: float = 3600.0

    @classmethod
    def from_env(cls, env: Mapping[str, str]) -> AlertThresholds:
        """The thresholds from ``PGSTASK_ALERT_*`` variables; unset ones keep their default."""
        d = cls()
        return cls(
            min_success_rate=_number(
                env, "PGSTASK_ALERT_MIN_SUCCESS_RATE", d.min_success_rate, high=100.0
            ),
            min_finished=int(_number(env, "PGSTASK_ALERT_MIN_FINISHED", d.min_finished)),
            max_average_duration=_number(
                env, "PGSTASK_ALERT_MAX_AVERAGE_DURATION", d.max_average_duration
            ),
            max_memory=_size(env, "PGSTASK_ALERT_MAX_MEMORY", d.max_memory),
            max_backlog_age=_number(env, "PGSTASK_ALERT_MAX_BACKLOG_AGE", d.max_backlog_age),
            stuck_after=_number(env, "PGSTASK_ALERT_STUCK_AFTER", d.stuck_after),
        )


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
    #: Alert thresholds of ``/stask/performance/alerts`` (``PGSTASK_ALERT_*``).
    alerts: AlertThresholds = dataclasses.field(default_factory=lambda: AlertThresholds())
    #: Name of the dashboard's session cookie; ``pgstask serve`` makes it ``pgstask_token_<port>``
    #: so that servers on other ports of the same host keep their own.
    cookie: str = "pgstask_token"
    #: Progress streams open at once, in all and per token; more are answered 429.
    max_streams: int = 100
    max_streams_per_token: int = 10
    #: A progress stream whose task's progress has not changed for this long ends (``idle``).
    stream_idle: float = 600.0
    #: ``pgstask serve``: connections at once (more are answered 503), seconds a request head
    #: may take to arrive, seconds a request body may stall, whole seconds an idle keep-alive
    #: connection stays open, and the proxies whose ``X-Forwarded-For``/``-Proto`` are
    #: believed (none by default).
    max_connections: int = 500
    header_timeout: float = 10.0
    body_timeout: float = 60.0
    keep_alive: int = 5
    forwarded_allow_ips: tuple[str, ...] = ()

    @classmethod
    def from_env(cls, env: Mapping[str, str] | None = None) -> HttpSettings:
        """The app's settings from ``PGSTASK_API_*`` and ``PGSTASK_ALERT_*`` variables
        (``os.environ`` by default); unset ones keep their default."""
        env = os.environ if env is None else env
        defaults = cls()
        hosts_raw = env.get("PGSTASK_API_ALLOWED_HOSTS", "").strip()
        hosts = tuple(h.strip() for h in hosts_raw.split(",") if h.strip())
        return cls(
            tokens=parse_tokens(env.get("PGSTASK_API_TOKENS", "")),
            allowed_hosts=hosts or defaults.allowed_hosts,
            max_body=_size(env, "PGSTASK_API_MAX_BODY", defaults.max_body),
            max_upload=_size(env, "PGSTASK_API_MAX_UPLOAD", defaults.max_upload),
            alerts=AlertThresholds.from_env(env),
            max_streams=_count(env, "PGSTASK_API_MAX_STREAMS", defaults.max_streams),
            max_streams_per_token=_count(
                env, "PGSTASK_API_MAX_STREAMS_PER_TOKEN", defaults.max_streams_per_token
            ),
            stream_idle=_positive(env, "PGSTASK_API_STREAM_IDLE", defaults.stream_idle),
            max_connections=_count(env, "PGSTASK_API_MAX_CONNECTIONS", defaults.max_connections),
            header_timeout=_positive(env, "PGSTASK_API_HEADER_TIMEOUT", defaults.header_timeout),
            body_timeout=_positive(env, "PGSTASK_API_BODY_TIMEOUT", defaults.body_timeout),
            keep_alive=_count(env, "PGSTASK_API_KEEP_ALIVE", defaults.keep_alive),
            forwarded_allow_ips=parse_proxies(
                env.get("PGSTASK_API_FORWARDED_ALLOW_IPS", ""), "PGSTASK_API_FORWARDED_ALLOW_IPS"
            ),
        )

    def replace(self, **changes: object) -> HttpSettings:
        """A copy with ``changes`` (``pgstask serve``'s flags over the environment)."""
        return dataclasses.replace(self, **changes)  # type: ignore[arg-type]


def parse_proxies(text: str, name: str) -> tuple[str, ...]:
    """Comma-separated IP addresses or networks (``10.0.0.0/8``) of trusted proxies. ``*``
    (trust everyone) is refused: it would let any client choose its own address."""
    proxies = []
    for entry in (e.strip() for e in text.split(",")):
        if not entry:
            continue
        if entry == "*":
            raise ConfigurationError(
                f"{name}: '*' would let any client choose its address; name the proxies"
            )
        try:
            network = ipaddress.ip_network(entry.strip("[]"), strict=False)
        except ValueError:
            raise ConfigurationError(f"{name}: {entry!r} is not an IP address or network") from None
        single = network.num_addresses == 1 and "/" not in entry
        proxies.append(str(network.network_address) if single else str(network))
    return tuple(proxies)


def _count(env: Mapping[str, str], name: str, default: int, unit: str = "") -> int:
    raw = env.get(name, "").strip()
    if not raw:
        return default
    try:
        value = int(raw)
    except ValueError:
        raise ConfigurationError(f"{name}={raw!r} is not a whole number{unit}") from None
    if value <= 0:
        raise ConfigurationError(f"{name} must be positive, not {value}")
    return value


def _positive(env: Mapping[str, str], name: str, default: float) -> float:
    value = _number(env, name, default)
    if value <= 0:
        raise ConfigurationError(f"{name} must be more than 0 seconds, not {value:g}")
    return value


def _size(env: Mapping[str, str], name: str, default: int) -> int:
    return _count(env, name, default, unit=" of bytes")


def _number(env: Mapping[str, str], name: str, default: float, high: float = 1e12) -> float:
    raw = env.get(name, "").strip()
    if not raw:
        return default
    try:
        value = float(raw)
    except ValueError:
        raise ConfigurationError(f"{name}={raw!r} is not a number") from None
    if not 0 <= value <= high:
        raise ConfigurationError(f"{name} must be between 0 and {high:g}, not {value:g}")
    return value
