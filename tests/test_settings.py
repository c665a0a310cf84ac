"""Settings: every ``PGSTASK_*`` variable is read, and every bad value is refused clearly."""

from __future__ import annotations

import dataclasses
import inspect
import re
from pathlib import Path
from typing import Any

import pytest

from pgstask import settings as settings_module
from pgstask.errors import ConfigurationError
from pgstask.settings import Settings

FULL_ENV = {
    "PGSTASK_DSN": "postgresql://app@db.internal:5432/jobs",
    "PGSTASK_WORKERS": " shop.workers , reports.tasks,, ",
    "PGSTASK_STORAGE": "/var/lib/pgstask/storage",
    "PGSTASK_DATA_DIR": "/var/lib/pgstask/pgdata",
    "PGSTASK_CONCURRENCY": " 8 ",
    "PGSTASK_ASYNC_CONCURRENCY": "500",
    "PGSTASK_POLL_INTERVAL": "0.25",
    "PGSTASK_HEARTBEAT_INTERVAL": "2",
    "PGSTASK_STALE_AFTER": "12.5",
    "PGSTASK_SHUTDOWN_GRACE": "0",
    "PGSTASK_POLL_ONLY": "yes",
    "PGSTASK_AUTO_ACTIVATE": "off",
    "PGSTASK_RETRY_BASE_DELAY": "1e-1",
    "PGSTASK_RETRY_MAX_DELAY": "30",
    "PGSTASK_PRIORITY_AGE": "600",
    "PGSTASK_TASK_RETENTION_DAYS": "7",
    "PGSTASK_LOG_RETENTION_DAYS": "never",
    "PGSTASK_FILE_STORAGE_LIMIT": " 1073741824 ",
    "PGSTASK_MAX_OPEN_UPLOADS": "20",
    "PGSTASK_NOTIFICATIONS": "0",
    "PGSTASK_PUBLIC_URL": " https://tasks.example.com/ ",
    "PGSTASK_WEBHOOK_TIMEOUT": "2.5",
    "PGSTASK_WEBHOOK_ALLOW_PRIVATE": "yes",
    "PGSTASK_SMTP_HOST": " smtp.example.com ",
    "PGSTASK_SMTP_PORT": " 2525 ",
    "PGSTASK_SMTP_TLS": "TLS",
    "PGSTASK_SMTP_USER": "mailer",
    "PGSTASK_SMTP_PASSWORD": " pass word ",
    "PGSTASK_SMTP_FROM": "pgstask@example.com",
}

FULL = Settings(
    dsn="postgresql://app@db.internal:5432/jobs",
    worker_modules=("shop.workers", "reports.tasks"),
    storage=Path("/var/lib/pgstask/storage"),
    data_dir=Path("/var/lib/pgstask/pgdata"),
    concurrency=8,
    async_concurrency=500,
    poll_interval=0.25,
    heartbeat_interval=2.0,
    stale_after=12.5,
    shutdown_grace=0.0,
    poll_only=True,
    auto_activate=False,
    retry_base_delay=0.1,
    retry_max_delay=30.0,
    priority_age=600.0,
    task_retention_days=7.0,
    log_retention_days=None,
    file_storage_limit=1073741824,
    max_open_uploads=20,
    notifications=False,
    public_url="https://tasks.example.com/",
    webhook_timeout=2.5,
    webhook_allow_private=True,
    smtp_host="smtp.example.com",
    smtp_port=2525,
    smtp_tls="tls",
    smtp_user="mailer",
    smtp_password=" pass word ",
    smtp_from="pgstask@example.com",
)


def _variables_in_source() -> set[str]:
    """Every ``PGSTASK_*`` name that ``Settings.from_env`` reads."""
    source = inspect.getsource(settings_module)
    return {f"PGSTASK_{name}" for name in re.findall(r'"PGSTASK_([A-Z_]+)"', source)}


def test_every_variable_is_covered_here() -> None:
    assert _variables_in_source() == set(FULL_ENV)


def test_every_variable_is_read() -> None:
    assert Settings.from_env(FULL_ENV) == FULL


def test_no_variables_means_defaults() -> None:
    assert Settings.from_env({}) == Settings()


def test_empty_variables_mean_defaults() -> None:
    # As `environment: [PGSTASK_POLL_ONLY=${POLL_ONLY}]` in a compose file leaves them.
    assert Settings.from_env(dict.fromkeys(FULL_ENV, "")) == Settings()
    assert Settings.from_env(dict.fromkeys(FULL_ENV, "  ")).auto_activate is True


def test_unrelated_variables_are_ignored() -> None:
    assert Settings.from_env({"PGSTASK": "x", "PGSTASK_UNKNOWN": "x", "DSN": "x"}) == Settings()


def test_os_environ_is_the_default_source(monkeypatch: pytest.MonkeyPatch) -> None:
    for name in FULL_ENV:
        monkeypatch.delenv(name, raising=False)
    monkeypatch.setenv("PGSTASK_CONCURRENCY", "3")
    monkeypatch.setenv("PGSTASK_DSN", "dbname=jobs")
    found = Settings.from_env()
    assert (found.concurrency, found.dsn) == (3, "dbname=jobs")


@pytest.mark.parametrize("raw", ["1", "true", "TRUE", " yes ", "On"])
def test_true_flags(raw: str) -> None:
    env = {"PGSTASK_POLL_ONLY": raw, "PGSTASK_AUTO_ACTIVATE": raw}
    found = Settings.from_env(env)
    assert found.poll_only is True and found.auto_activate is True


@pytest.mark.parametrize("raw", ["0", "false", "No", " OFF "])
def test_false_flags(raw: str) -> None:
    env = {"PGSTASK_POLL_ONLY": raw, "PGSTASK_AUTO_ACTIVATE": raw}
    found = Settings.from_env(env)
    assert found.poll_only is False and found.auto_activate is False


@pytest.mark.parametrize("raw", ["never", "off", "NONE"])
def test_retention_can_be_switched_off(raw: str) -> None:
    env = {"PGSTASK_TASK_RETENTION_DAYS": raw, "PGSTASK_LOG_RETENTION_DAYS": raw}
    found = Settings.from_env(env)
    assert found.task_retention_days is None and found.log_retention_days is None


@pytest.mark.parametrize(
    ("variable", "raw"),
    [
        ("PGSTASK_CONCURRENCY", "many"),
        ("PGSTASK_CONCURRENCY", "2.5"),
        ("PGSTASK_POLL_INTERVAL", "fast"),
        ("PGSTASK_POLL_INTERVAL", "nan"),
        ("PGSTASK_HEARTBEAT_INTERVAL", "5s"),
        ("PGSTASK_STALE_AFTER", "inf"),
        ("PGSTASK_SHUTDOWN_GRACE", "-inf"),
        ("PGSTASK_RETRY_BASE_DELAY", "1,5"),
        ("PGSTASK_RETRY_MAX_DELAY", "NaN"),
        ("PGSTASK_POLL_ONLY", "maybe"),
        ("PGSTASK_AUTO_ACTIVATE", "2"),
        ("PGSTASK_TASK_RETENTION_DAYS", "a week"),
        ("PGSTASK_TASK_RETENTION_DAYS", "0"),
        ("PGSTASK_LOG_RETENTION_DAYS", "-1"),
        ("PGSTASK_LOG_RETENTION_DAYS", "nan"),
        ("PGSTASK_SMTP_PORT", "abc"),
        ("PGSTASK_SMTP_PORT", "0"),
        ("PGSTASK_SMTP_PORT", "65536"),
        ("PGSTASK_SMTP_TLS", "maybe"),
        ("PGSTASK_SMTP_FROM", "not an address"),
        ("PGSTASK_PUBLIC_URL", "tasks.example.com"),
        ("PGSTASK_WEBHOOK_TIMEOUT", "soon"),
        ("PGSTASK_WEBHOOK_ALLOW_PRIVATE", "perhaps"),
        ("PGSTASK_NOTIFICATIONS", "sometimes"),
    ],
)
def test_a_bad_value_names_its_variable(variable: str, raw: str) -> None:
    with pytest.raises(ConfigurationError) as caught:
        Settings.from_env({variable: raw})
    assert variable in str(caught.value)


@pytest.mark.parametrize(
    ("variable", "raw", "setting"),
    [
        ("PGSTASK_CONCURRENCY", "0", "concurrency"),
        ("PGSTASK_CONCURRENCY", "1025", "concurrency"),
        ("PGSTASK_ASYNC_CONCURRENCY", "0", "async_concurrency"),
        ("PGSTASK_ASYNC_CONCURRENCY", "100001", "async_concurrency"),
        ("PGSTASK_POLL_INTERVAL", "0", "poll_interval"),
        ("PGSTASK_SHUTDOWN_GRACE", "-1", "shutdown_grace"),
        ("PGSTASK_STALE_AFTER", "5", "stale_after"),
        ("PGSTASK_RETRY_MAX_DELAY", "1", "retry_max_delay"),
    ],
)
def test_values_from_the_environment_are_validated(variable: str, raw: str, setting: str) -> None:
    with pytest.raises(ConfigurationError) as caught:
        Settings.from_env({variable: raw})
    assert setting in str(caught.value)


# --- validate() -----------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("changes", "message"),
    [
        ({"concurrency": 0}, "concurrency must be between 1 and 1024"),
        ({"concurrency": 1025}, "concurrency must be between 1 and 1024"),
        ({"poll_interval": 0.0}, "poll_interval must be a positive number"),
        ({"poll_interval": -1.0}, "poll_interval must be a positive number"),
        ({"poll_interval": float("nan")}, "poll_interval must be a positive number"),
        ({"poll_interval": float("inf")}, "poll_interval must be a positive number"),
        ({"heartbeat_interval": 0.0}, "heartbeat_interval must be a positive number"),
        ({"stale_after": 0.0}, "stale_after must be a positive number"),
        ({"retry_base_delay": 0.0}, "retry_base_delay must be a positive number"),
        ({"shutdown_grace": -0.5}, "shutdown_grace must not be negative"),
        ({"shutdown_grace": float("nan")}, "shutdown_grace must not be negative"),
        ({"retry_base_delay": 5.0, "retry_max_delay": 4.0}, "retry_max_delay must not be smaller"),
        ({"retry_max_delay": float("nan")}, "retry_max_delay must not be smaller"),
        ({"heartbeat_interval": 30.0, "stale_after": 30.0}, "must be longer than heartbeat"),
        ({"heartbeat_interval": 40.0, "stale_after": 30.0}, "must be longer than heartbeat"),
    ],
)
def test_validate_refuses(changes: dict[str, Any], message: str) -> None:
    with pytest.raises(ConfigurationError, match=re.escape(message)):
        dataclasses.replace(Settings(), **changes).validate()


@pytest.mark.parametrize(
    "changes",
    [
        {},
        {"concurrency": 1},
        {"concurrency": 1024},
        {"shutdown_grace": 0.0},
        {"retry_base_delay": 3.0, "retry_max_delay": 3.0},
        {"heartbeat_interval": 0.2, "stale_after": 0.21},
    ],
)
def test_validate_accepts(changes: dict[str, Any]) -> None:
    checked = dataclasses.replace(Settings(), **changes)
    assert checked.validate() is checked


def test_replace_ignores_none_and_validates() -> None:
    base = Settings(concurrency=4)
    assert base.replace(concurrency=None, poll_only=None) == base
    assert base.replace(concurrency=2, poll_only=True) == dataclasses.replace(
        base, concurrency=2, poll_only=True
    )
    with pytest.raises(ConfigurationError, match="concurrency"):
        base.replace(concurrency=0)


def test_settings_are_frozen() -> None:
    with pytest.raises(dataclasses.FrozenInstanceError):
        Settings().concurrency = 2  # type: ignore[misc]


@pytest.mark.parametrize(
    ("env", "named"),
    [
        ({"PGSTASK_SMTP_HOST": "smtp.example.com"}, "PGSTASK_SMTP_FROM"),
        ({"PGSTASK_SMTP_USER": "mailer"}, "PGSTASK_SMTP_PASSWORD"),
        ({"PGSTASK_SMTP_PASSWORD": "secret"}, "PGSTASK_SMTP_USER"),
    ],
)
def test_smtp_settings_that_only_work_together(env: dict[str, str], named: str) -> None:
    with pytest.raises(ConfigurationError, match=named):
        Settings.from_env(env)


@pytest.mark.parametrize(("tls", "port"), [("none", 25), ("starttls", 587), ("tls", 465)])
def test_the_smtp_port_defaults_to_the_tls_modes(tls: str, port: int) -> None:
    assert Settings.from_env({"PGSTASK_SMTP_TLS": tls}).smtp_port_or_default == port
    given = Settings.from_env({"PGSTASK_SMTP_TLS": tls, "PGSTASK_SMTP_PORT": "2525"})
    assert given.smtp_port_or_default == 2525


def test_the_smtp_password_is_not_shown() -> None:
    assert "hunter2" not in repr(
        Settings.from_env({"PGSTASK_SMTP_USER": "u", "PGSTASK_SMTP_PASSWORD": "hunter2"})
    )
