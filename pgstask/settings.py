"""Settings: every ``PGSTASK_*`` variable, read and validated in one place.

CLI flags override the environment by building a new ``Settings`` with
``dataclasses.replace`` and calling ``validate()`` again.
"""

from __future__ import annotations

import dataclasses
import math
import os
from collections.abc import Mapping
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

    @classmethod
    def from_env(cls, env: Mapping[str, str] | None = None) -> Settings:
        """Settings from ``PGSTASK_*`` variables (``os.environ`` by default)."""
        env = os.environ if env is None else env
        defaults = cls()

        def number(name: str, default: float) -> float:
            raw = env.get(f"PGSTASK_{name}")
            if raw is None or raw.strip() == "":
                return default
            try:
                value = float(raw)
            except ValueError:
                value = math.nan
            if not math.isfinite(value):
                raise ConfigurationError(f"PGSTASK_{name}={raw!r} is not a number of seconds")
            return value

        def flag(name: str, default: bool) -> bool:
            raw = env.get(f"PGSTASK_{name}")
            if raw is None or raw.strip() == "":
                return default
            if raw.strip().lower() in _TRUE:
                return True
            if raw.strip().lower() in _FALSE:
                return False
            raise ConfigurationError(f"PGSTASK_{name}={raw!r} is not a boolean (use 1 or 0)")

        def days(name: str, default: float | None) -> float | None:
            raw = env.get(f"PGSTASK_{name}")
            if raw is None or raw.strip() == "":
                return default
            if raw.strip().lower() in {"never", "off", "none"}:
                return None
            try:
                value = float(raw)
            except ValueError:
                raise ConfigurationError(
                    f"PGSTASK_{name}={raw!r} is not a number of days (or 'never')"
                ) from None
            if not (value > 0 and math.isfinite(value)):
                raise ConfigurationError(f"PGSTASK_{name} must be positive (or 'never')")
            return value

        concurrency_raw = env.get("PGSTASK_CONCURRENCY", "").strip()
        try:
            concurrency = int(concurrency_raw) if concurrency_raw else defaults.concurrency
        except ValueError:
            raise ConfigurationError(
                f"PGSTASK_CONCURRENCY={concurrency_raw!r} is not a whole number"
            ) from None

        def count(name: str, default: int) -> int:
            raw = env.get(f"PGSTASK_{name}", "").strip()
            if not raw:
                return default
            try:
                return int(raw)
            except ValueError:
                raise ConfigurationError(f"PGSTASK_{name}={raw!r} is not a whole number") from None

        modules = tuple(m.strip() for m in env.get("PGSTASK_WORKERS", "").split(",") if m.strip())
        settings = cls(
            dsn=env.get("PGSTASK_DSN") or None,
            worker_modules=modules,
            storage=Path(env.get("PGSTASK_STORAGE") or defaults.storage),
            data_dir=Path(env.get("PGSTASK_DATA_DIR") or defaults.data_dir),
            concurrency=concurrency,
            poll_interval=number("POLL_INTERVAL", defaults.poll_interval),
            heartbeat_interval=number("HEARTBEAT_INTERVAL", defaults.heartbeat_interval),
            stale_after=number("STALE_AFTER", defaults.stale_after),
            shutdown_grace=number("SHUTDOWN_GRACE", defaults.shutdown_grace),
            poll_only=flag("POLL_ONLY", defaults.poll_only),
            auto_activate=flag("AUTO_ACTIVATE", defaults.auto_activate),
            retry_base_delay=number("RETRY_BASE_DELAY", defaults.retry_base_delay),
            retry_max_delay=number("RETRY_MAX_DELAY", defaults.retry_max_delay),
            task_retention_days=days("TASK_RETENTION_DAYS", defaults.task_retention_days),
            log_retention_days=days("LOG_RETENTION_DAYS", defaults.log_retention_days),
            file_storage_limit=count("FILE_STORAGE_LIMIT", defaults.file_storage_limit),
            max_open_uploads=count("MAX_OPEN_UPLOADS", defaults.max_open_uploads),
        )
        return settings.validate()

    def replace(self, **changes: object) -> Settings:
        """A copy with ``changes`` applied (None values are ignored), validated."""
        given = {k: v for k, v in changes.items() if v is not None}
        return dataclasses.replace(self, **given).validate()  # type: ignore[arg-type]

    def validate(self) -> Settings:
        if not 1 <= self.concurrency <= 1024:
            raise ConfigurationError(
                f"concurrency must be between 1 and 1024, not {self.concurrency}"
            )
        for name in ("poll_interval", "heartbeat_interval", "stale_after", "retry_base_delay"):
            value = getattr(self, name)
            if not (value > 0 and math.isfinite(value)):
                raise ConfigurationError(
                    f"{name} must be a positive number of seconds, not {value}"
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
        if self.stale_after <= self.heartbeat_interval:
            raise ConfigurationError(
                f"stale_after ({self.stale_after}s) must be longer than heartbeat_interval "
                f"({self.heartbeat_interval}s), or live daemons would be declared dead"
            )
        return self
