"""Settings: every ``PGSTASK_*`` variable, read and validated in one place.

CLI flags override the environment by building a new ``Settings`` with
``dataclasses.replace`` and calling ``validate()`` again.
"""

from __future__ import annotations

import dataclasses
import math
import os
import re
from collections.abc import Callable, Mapping
from pathlib import Path

from pgstask.errors import ConfigurationError

_TRUE = {"1", "true", "yes", "on"}
_FALSE = {"0", "false", "no", "off"}


@dataclasses.dataclass(frozen=True, slots=True)
class Settings:
    """pgstask's configuration. Durations are float seconds."""

    #: libpq URI or key/value string; None means the embedded PostgreSQL in ``data_dir``.
    dsn: str | None = None
    #: Python modules to import for worker classes (besides the ``pgstask.workers`` entry points).
    worker_modules: tuple[str, ...] = ()
    #: Directory of JSON progress snapshots and ``{id}.log`` files.
    storage: Path = Path(".pgstask/storage")
    #: Data directory of the embedded PostgreSQL.
    data_dir: Path = Path(".pgstask/pgdata")
    #: Actions a daemon runs at once.
    concurrency: int = 10
    #: ``async def`` actions a daemon runs at once on its event loop, besides ``concurrency``.
    async_concurrency: int = 100
    #: Seconds between polls when no notification arrives.
    poll_interval: float = 2.0
    #: Seconds between a daemon's heartbeats.
    heartbeat_interval: float = 5.0
    #: A daemon whose heartbeat is older than this is dead and its tasks are rescued.
    stale_after: float = 30.0
    #: Seconds running actions get to finish after SIGTERM before their tasks are given back.
    shutdown_grace: float = 30.0
    #: Do not LISTEN (for PgBouncer in transaction mode); rely on polling only.
    poll_only: bool = False
    #: A worker a daemon registers for the first time starts active.
    auto_activate: bool = True
    #: First retry delay; doubles on each attempt up to ``retry_max_delay``, with jitter.
    retry_base_delay: float = 2.0
    retry_max_delay: float = 600.0
    #: Seconds after which a due task of normal or low priority is claimed ahead of newer tasks
    #: of a higher priority (no starvation); None keeps priorities strict (docs/priorities.md).
    priority_age: float | None = None
    #: Finished tasks (completed, cancelled, failed) older than this are deleted; None keeps them.
    task_retention_days: float | None = 30.0
    #: Log records older than this are deleted; None keeps them.
    log_retention_days: float | None = 30.0
    #: Bytes all stored files (results and uploads, finished or not) may take before the API
    #: refuses uploads with 507 (``PGSTASK_FILE_STORAGE_LIMIT``).
    file_storage_limit: int = 10 * 1024**3
    #: Chunked uploads that may be unfinished at once before the API refuses a new one with 429
    #: (``PGSTASK_MAX_OPEN_UPLOADS``); abandoned ones are deleted after a day.
    max_open_uploads: int = 100
    #: Run the built-in delivery workers (``pgstask.webhook``, ``pgstask.email``) in every daemon
    #: (``PGSTASK_NOTIFICATIONS``; docs/notifications.md).
    notifications: bool = True
    #: The base URL the dashboard is reached at from outside (``PGSTASK_PUBLIC_URL``), e.g.
    #: ``https://tasks.example.com``: webhook bodies and emails link to the task's page under it.
    public_url: str | None = None
    #: Seconds a webhook POST may take, from the connection to the last byte read.
    webhook_timeout: float = 10.0
    #: Let webhooks reach loopback, private, link-local and other non-public addresses.
    webhook_allow_private: bool = False
    #: The SMTP server of email notifications; None: email notifications fail, saying so.
    smtp_host: str | None = None
    #: None: 25 without TLS, 587 with STARTTLS, 465 with TLS.
    smtp_port: int | None = None
    #: ``none``, ``starttls`` (the default) or ``tls`` (TLS from the first byte, "SMTPS").
    smtp_tls: str = "starttls"
    smtp_user: str | None = None
    smtp_password: str | None = dataclasses.field(default=None, repr=False)
    #: The sender's address of email notifications (required with ``smtp_host``).
    smtp_from: str | None = None

    @classmethod
    def from_env(cls, env: Mapping[str, str] | None = None) -> Settings:
        """Settings from ``PGSTASK_*`` variables (``os.environ`` by default). A variable that
        is unset or empty (blank, for one read as a number or a flag) leaves its default."""
        env = os.environ if env is None else env
        given: dict[str, object] = {}
        for field, (variable, parse) in _FROM_ENV.items():
            raw = env.get(variable, "")
            if raw.strip() or (raw and parse in _VERBATIM):
                given[field] = parse(variable, raw)
        return cls(**given).validate()  # type: ignore[arg-type]

    def replace(self, **changes: object) -> Settings:
        """A copy with ``changes`` applied (None values are ignored), validated."""
        given = {k: v for k, v in changes.items() if v is not None}
        return dataclasses.replace(self, **given).validate()  # type: ignore[arg-type]

    def validate(self) -> Settings:
        """Check the values, alone and together (``stale_after`` must be longer than
        ``heartbeat_interval``); the settings themselves, or a ``ConfigurationError`` naming the
        first bad one."""
        if not 1 <= self.concurrency <= 1024:
            raise ConfigurationError(
                f"concurrency must be between 1 and 1024, not {self.concurrency}"
            )
        if not 1 <= self.async_concurrency <= 100_000:
            raise ConfigurationError(
                f"async_concurrency must be between 1 and 100000, not {self.async_concurrency}"
            )
        for name in ("poll_interval", "heartbeat_interval", "stale_after", "retry_base_delay"):
            value = getattr(self, name)
            if not (value > 0 and math.isfinite(value)):
                raise ConfigurationError(
                    f"{name} must be a positive number of seconds, not {value}"
                )
        if self.priority_age is not None and not (
            self.priority_age > 0 and math.isfinite(self.priority_age)
        ):
            raise ConfigurationError(
                f"priority_age must be a positive number of seconds, not {self.priority_age}"
            )
        if not (self.shutdown_grace >= 0 and math.isfinite(self.shutdown_grace)):
            raise ConfigurationError(
                f"shutdown_grace must not be negative, not {self.shutdown_grace}"
            )
        if not (
            self.retry_max_delay >= self.retry_base_delay and math.isfinite(self.retry_max_delay)
        ):
            raise ConfigurationError("retry_max_delay must not be smaller than retry_base_delay")
        for name in ("file_storage_limit", "max_open_uploads"):
            value = getattr(self, name)
            if isinstance(value, bool) or not isinstance(value, int) or value <= 0:
                raise ConfigurationError(f"{name} must be a positive whole number, not {value!r}")
        self._validate_notifications()
        if self.stale_after <= self.heartbeat_interval:
            raise ConfigurationError(
                f"stale_after ({self.stale_after}s) must be longer than heartbeat_interval "
                f"({self.heartbeat_interval}s), or live daemons would be declared dead"
            )
        return self

    def _validate_notifications(self) -> None:
        """The webhook and SMTP settings (docs/notifications.md)."""
        if not (self.webhook_timeout > 0 and math.isfinite(self.webhook_timeout)):
            raise ConfigurationError(
                f"webhook_timeout must be a positive number of seconds, not {self.webhook_timeout}"
            )
        if self.public_url is not None and not _PUBLIC_URL.fullmatch(self.public_url):
            raise ConfigurationError(
                f"PGSTASK_PUBLIC_URL={self.public_url!r} is not an http(s) URL such as "
                "https://tasks.example.com"
            )
        if self.smtp_tls not in SMTP_TLS_MODES:
            raise ConfigurationError(
                f"PGSTASK_SMTP_TLS={self.smtp_tls!r} is not a TLS mode; use none, starttls or tls"
            )
        if self.smtp_port is not None and not 1 <= self.smtp_port <= 65535:
            raise ConfigurationError(
                f"PGSTASK_SMTP_PORT={self.smtp_port} is not a port number (1 to 65535)"
            )
        if (self.smtp_user is None) != (self.smtp_password is None):
            raise ConfigurationError(
                "PGSTASK_SMTP_USER and PGSTASK_SMTP_PASSWORD go together: set both, or neither"
            )
        if self.smtp_host is not None and self.smtp_from is None:
            raise ConfigurationError(
                "PGSTASK_SMTP_FROM (the sender's address) is required with PGSTASK_SMTP_HOST"
            )
        if self.smtp_from is not None and not _ADDRESS.fullmatch(self.smtp_from):
            raise ConfigurationError(
                f"PGSTASK_SMTP_FROM={self.smtp_from!r} is not an email address such as "
                "pgstask@example.com"
            )

    @property
    def smtp_port_or_default(self) -> int:
        """The SMTP port: the one set, else the usual one of the TLS mode."""
        if self.smtp_port is not None:
            return self.smtp_port
        return {"none": 25, "starttls": 587, "tls": 465}[self.smtp_tls]


#: How pgstask talks to the SMTP server (``PGSTASK_SMTP_TLS``).
SMTP_TLS_MODES = ("none", "starttls", "tls")
_PUBLIC_URL = re.compile(r"https?://[^\s/?#]+(/[^\s?#]*)?", re.IGNORECASE)
#: An email address as pgstask accepts one: no blanks, commas or angle brackets, one @.
_ADDRESS = re.compile(r"[^\s@,<>\"]{1,64}@[^\s@,<>\"]{1,189}")


def _seconds(variable: str, raw: str) -> float:
    """A duration in float seconds; a number that is not finite is refused too."""
    try:
        value = float(raw)
    except ValueError:
        value = math.nan
    if not math.isfinite(value):
        raise ConfigurationError(f"{variable}={raw!r} is not a number of seconds")
    return value


def _flag(variable: str, raw: str) -> bool:
    """A boolean: 1/true/yes/on or 0/false/no/off, in any case."""
    if raw.strip().lower() in _TRUE:
        return True
    if raw.strip().lower() in _FALSE:
        return False
    raise ConfigurationError(f"{variable}={raw!r} is not a boolean (use 1 or 0)")


def _days(variable: str, raw: str) -> float | None:
    """A retention in days, positive; ``never`` (or off, none) keeps rows for ever (None)."""
    if raw.strip().lower() in {"never", "off", "none"}:
        return None
    try:
        value = float(raw)
    except ValueError:
        raise ConfigurationError(
            f"{variable}={raw!r} is not a number of days (or 'never')"
        ) from None
    if not (value > 0 and math.isfinite(value)):
        raise ConfigurationError(f"{variable} must be positive (or 'never')")
    return value


def _whole(variable: str, raw: str) -> int:
    """A whole number (a count or a size in bytes)."""
    raw = raw.strip()
    try:
        return int(raw)
    except ValueError:
        raise ConfigurationError(f"{variable}={raw!r} is not a whole number") from None


def _port(variable: str, raw: str) -> int:
    """A TCP port, 1 to 65535."""
    raw = raw.strip()
    if not raw.isdigit() or not 1 <= int(raw) <= 65535:
        raise ConfigurationError(f"{variable}={raw!r} is not a port number (1 to 65535)")
    return int(raw)


def _tls(variable: str, raw: str) -> str:
    """An SMTP TLS mode: none, starttls or tls, in any case."""
    mode = raw.strip().lower()
    if mode not in SMTP_TLS_MODES:
        raise ConfigurationError(
            f"{variable}={raw!r} is not a TLS mode; use none, starttls (the default) or tls"
        )
    return mode


def _word(variable: str, raw: str) -> str:
    """A value without blanks around it (a host name, a user, an address)."""
    return raw.strip()


def _secret(variable: str, raw: str) -> str:
    """A password, as it is (blanks around it included); only blanks: unset."""
    return raw


def _text(variable: str, raw: str) -> str:
    """The value as it is (a DSN)."""
    return raw


def _path(variable: str, raw: str) -> Path:
    """A directory, as given."""
    return Path(raw)


def _modules(variable: str, raw: str) -> tuple[str, ...]:
    """A comma-separated list of module names; blanks between commas are skipped."""
    return tuple(m.strip() for m in raw.split(",") if m.strip())


#: Parsers that take a value of only spaces as it is; the others read it as unset.
_VERBATIM = frozenset({_text, _path})

#: Each field ``from_env`` sets, in the order it reads them: its variable and its parser.
_FROM_ENV: dict[str, tuple[str, Callable[[str, str], object]]] = {
    "dsn": ("PGSTASK_DSN", _text),
    "worker_modules": ("PGSTASK_WORKERS", _modules),
    "storage": ("PGSTASK_STORAGE", _path),
    "data_dir": ("PGSTASK_DATA_DIR", _path),
    "concurrency": ("PGSTASK_CONCURRENCY", _whole),
    "async_concurrency": ("PGSTASK_ASYNC_CONCURRENCY", _whole),
    "poll_interval": ("PGSTASK_POLL_INTERVAL", _seconds),
    "heartbeat_interval": ("PGSTASK_HEARTBEAT_INTERVAL", _seconds),
    "stale_after": ("PGSTASK_STALE_AFTER", _seconds),
    "shutdown_grace": ("PGSTASK_SHUTDOWN_GRACE", _seconds),
    "poll_only": ("PGSTASK_POLL_ONLY", _flag),
    "auto_activate": ("PGSTASK_AUTO_ACTIVATE", _flag),
    "retry_base_delay": ("PGSTASK_RETRY_BASE_DELAY", _seconds),
    "retry_max_delay": ("PGSTASK_RETRY_MAX_DELAY", _seconds),
    "priority_age": ("PGSTASK_PRIORITY_AGE", _seconds),
    "task_retention_days": ("PGSTASK_TASK_RETENTION_DAYS", _days),
    "log_retention_days": ("PGSTASK_LOG_RETENTION_DAYS", _days),
    "file_storage_limit": ("PGSTASK_FILE_STORAGE_LIMIT", _whole),
    "max_open_uploads": ("PGSTASK_MAX_OPEN_UPLOADS", _whole),
    "notifications": ("PGSTASK_NOTIFICATIONS", _flag),
    "public_url": ("PGSTASK_PUBLIC_URL", _word),
    "webhook_timeout": ("PGSTASK_WEBHOOK_TIMEOUT", _seconds),
    "webhook_allow_private": ("PGSTASK_WEBHOOK_ALLOW_PRIVATE", _flag),
    "smtp_host": ("PGSTASK_SMTP_HOST", _word),
    "smtp_port": ("PGSTASK_SMTP_PORT", _port),
    "smtp_tls": ("PGSTASK_SMTP_TLS", _tls),
    "smtp_user": ("PGSTASK_SMTP_USER", _word),
    "smtp_password": ("PGSTASK_SMTP_PASSWORD", _secret),
    "smtp_from": ("PGSTASK_SMTP_FROM", _word),
}
