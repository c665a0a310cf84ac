"""What every command shares: exit codes, option types, the common options, and ``Context``.

``Context`` turns the parsed arguments into ``Settings`` (``PGSTASK_*`` environment first, flags
over it), resolves the database (the configured DSN, or the embedded PostgreSQL, announced once
on stderr), makes sure the schema is there (migrating the embedded database automatically; on a
configured database a missing or old schema is an error that says to run ``pgstask migrate``),
and hands out one ``Client``.
"""

from __future__ import annotations

import argparse
import datetime as dt
import json
import math
import os
import sys
from collections.abc import Callable
from pathlib import Path
from typing import Any, TextIO, TypeAlias

import psycopg

from pgstask import embedded
from pgstask.client import Client
from pgstask.db import connect, translate_errors
from pgstask.errors import ConfigurationError, DatabaseError, PgstaskError, SchemaError
from pgstask.settings import Settings
from pgstask.task import Status

EXIT_OK = 0
EXIT_FAILED = 1  # a task failed or was cancelled (run-once, tasks watch, create --wait)
EXIT_USAGE = 2  # bad flag, environment variable, JSON or task field
EXIT_DATABASE = 3  # PostgreSQL unreachable, refused a statement, or schema missing/old
EXIT_NOT_FOUND = 4  # no task with that id / no worker with that identifier
EXIT_STATE = 5  # the task's status does not allow the operation
EXIT_INTERRUPTED = 130  # Ctrl-C in a command other than daemon/run-once

EXIT_CODES_HELP = """\
exit codes:
  0  success
  1  a task failed or was cancelled (run-once, tasks watch, create --wait)
  2  usage error: bad flag, PGSTASK_* variable, JSON or task field
  3  database error: PostgreSQL unreachable, or its schema missing/old (run `pgstask migrate`)
  4  not found: no task with that id, or no worker with that identifier
  5  wrong state: e.g. cancelling a finished task, retrying a completed one

Settings come from PGSTASK_* environment variables (PGSTASK_DSN, PGSTASK_STORAGE,
PGSTASK_WORKERS, PGSTASK_CONCURRENCY, PGSTASK_POLL_INTERVAL, …); flags override them.
Without PGSTASK_DSN, pgstask starts (or reuses) an embedded PostgreSQL in PGSTASK_DATA_DIR
(default .pgstask/pgdata) and migrates it automatically."""

Handler = Callable[["Context"], int]
Subparsers: TypeAlias = "argparse._SubParsersAction[argparse.ArgumentParser]"


# --- option types: a bad value is an argparse error (exit 2) that names the flag -----------------


def positive_int(text: str) -> int:
    try:
        value = int(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"{text!r} is not a whole number") from None
    if value < 1:
        raise argparse.ArgumentTypeError(f"must be at least 1, not {value}")
    return value


def task_id(text: str) -> int:
    try:
        value = int(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"a task id is a whole number, not {text!r}") from None
    if value < 1:
        raise argparse.ArgumentTypeError(f"a task id is positive, not {value}")
    return value


def seconds(text: str) -> float:
    try:
        value = float(text)
    except ValueError:
        value = math.nan
    if not (math.isfinite(value) and value >= 0):
        raise argparse.ArgumentTypeError(f"{text!r} is not a number of seconds >= 0")
    return value


def positive_seconds(text: str) -> float:
    value = seconds(text)
    if value <= 0:
        raise argparse.ArgumentTypeError(f"must be more than 0 seconds, not {text}")
    return value


def status(text: str) -> str:
    try:
        return Status.parse(text).text
    except ValueError as exc:
        raise argparse.ArgumentTypeError(str(exc)) from None


def json_object(text: str) -> dict[str, Any]:
    try:
        value = json.loads(text)
    except json.JSONDecodeError as exc:
        raise argparse.ArgumentTypeError(f"not valid JSON ({exc})") from None
    if not isinstance(value, dict):
        raise argparse.ArgumentTypeError(
            f"must be a JSON object ({{…}}), not {type(value).__name__}"
        )
    return value


def timestamp(text: str) -> dt.datetime:
    """ISO 8601; a time without an offset is local time."""
    try:
        value = dt.datetime.fromisoformat(text)
    except ValueError:
        raise argparse.ArgumentTypeError(
            f"{text!r} is not an ISO 8601 time (e.g. 2030-01-31T08:00:00+00:00)"
        ) from None
    return value if value.tzinfo is not None else value.astimezone()


# --- the common options ------------------------------------------------------------------------


def add_common(parser: argparse.ArgumentParser, *, top: bool) -> None:
    """Options every command accepts, before or after its name.

    The top-level parser sets their defaults; subcommand parsers use ``SUPPRESS`` so that an option
    given before the command name is not reset by the subcommand.
    """
    default: Any = None if top else argparse.SUPPRESS
    group = parser.add_argument_group("settings (override PGSTASK_* variables)")
    group.add_argument(
        "--dsn",
        default=default,
        metavar="DSN",
        help="PostgreSQL URI or key=value string (PGSTASK_DSN; unset = embedded PostgreSQL)",
    )
    group.add_argument(
        "--storage",
        default=default,
        type=Path,
        metavar="DIR",
        help="directory of progress snapshots and task log files (PGSTASK_STORAGE)",
    )
    group.add_argument(
        "--data-dir",
        default=default,
        type=Path,
        metavar="DIR",
        help="data directory of the embedded PostgreSQL (PGSTASK_DATA_DIR)",
    )
    group.add_argument(
        "--workers",
        default=default,
        metavar="MOD[,MOD]",
        help="worker modules to import, added to PGSTASK_WORKERS",
    )
    group.add_argument(
        "--debug",
        default=False if top else argparse.SUPPRESS,
        action="store_true",
        help="debug logging, and tracebacks for errors",
    )


def add_runtime(parser: argparse.ArgumentParser) -> None:
    """Options of the commands that run tasks (``daemon``, ``run-once``)."""
    group = parser.add_argument_group("running tasks (override PGSTASK_* variables)")
    group.add_argument(
        "--concurrency",
        type=positive_int,
        metavar="N",
        help="actions run at once (PGSTASK_CONCURRENCY, default 10)",
    )
    group.add_argument(
        "--poll-interval",
        type=positive_seconds,
        metavar="S",
        help="seconds between polls without a notification (PGSTASK_POLL_INTERVAL)",
    )
    group.add_argument(
        "--heartbeat-interval",
        type=positive_seconds,
        metavar="S",
        help="seconds between heartbeats (PGSTASK_HEARTBEAT_INTERVAL)",
    )
    group.add_argument(
        "--stale-after",
        type=positive_seconds,
        metavar="S",
        help="a daemon silent this long is dead and its tasks are rescued (PGSTASK_STALE_AFTER)",
    )
    group.add_argument(
        "--shutdown-grace",
        type=seconds,
        metavar="S",
        help="seconds running actions get to finish after SIGTERM (PGSTASK_SHUTDOWN_GRACE)",
    )
    group.add_argument(
        "--poll-only",
        action="store_true",
        default=None,
        help="do not LISTEN, only poll (PgBouncer in transaction mode; PGSTASK_POLL_ONLY)",
    )


def add_json(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--json", action="store_true", help="print JSON instead of text")


# --- the context ---------------------------------------------------------------------------------


class Context:
    """Settings, database and client of one command invocation."""

    def __init__(
        self, args: argparse.Namespace, *, out: TextIO | None = None, err: TextIO | None = None
    ) -> None:
        self.args = args
        self.out = out or sys.stdout
        self.err = err or sys.stderr
        self.settings = _settings(args)
        self._dsn: str | None = None
        self._ready = False
        self._client: Client | None = None

    @property
    def embedded(self) -> bool:
        return self.settings.dsn is None

    def note(self, message: str) -> None:
        """A one-line notice on stderr (never on stdout, which scripts read)."""
        self.err.write(f"pgstask: {message}\n")
        self.err.flush()

    def dsn(self) -> str:
        """The configured DSN, or the embedded PostgreSQL's (started or reused, announced)."""
        if self._dsn is None:
            if self.settings.dsn is not None:
                self._dsn = self.settings.dsn
            else:
                path = self.settings.data_dir.expanduser().resolve()
                self.note(
                    f"using the embedded PostgreSQL in {path} "
                    "(set PGSTASK_DSN to use your own database)"
                )
                self._dsn = embedded.start(path)
        return self._dsn

    def ready_dsn(self) -> str:
        """``dsn()``, with the embedded database migrated to this pgstask's revision.

        A configured database is only probed (one connection); its schema is not checked up
        front (that would cost every command the import of alembic): a missing schema surfaces
        as ``SchemaError`` from the first query, and ``explain`` turns other database errors
        into one when the schema is old.
        """
        dsn = self.dsn()
        if not self.embedded and not self._ready:
            # One direct connection first: the client's pool would retry for 10 s and then
            # report only "pool initialization incomplete" instead of why it cannot connect.
            connect(dsn, name="pgstask-cli").close()
            self._ready = True
        if self.embedded and not self._ready:
            from pgstask import migrate  # imports alembic: only where it is needed

            with translate_errors():
                head, current = migrate.head_revision(), migrate.current_revision(dsn)
                if current != head:
                    self.note(f"migrating the embedded database to revision {head}")
                    migrate.upgrade(dsn)
            self._ready = True
        return dsn

    def explain(self, exc: PgstaskError) -> PgstaskError:
        """``exc``, or a ``SchemaError`` saying to migrate when the schema is behind."""
        answered = isinstance(exc.__cause__, psycopg.Error) and not isinstance(
            exc.__cause__, psycopg.OperationalError
        )
        if not isinstance(exc, DatabaseError) or isinstance(exc, SchemaError) or not answered:
            return exc
        try:
            from pgstask import migrate

            head, current = migrate.head_revision(), migrate.current_revision(self.dsn())
        except Exception:
            return exc
        if current == head:
            return exc
        return SchemaError(
            f"{exc}; the database schema is at revision {current or 'none'}, this pgstask "
            f"needs {head}: run `pgstask migrate`"
        )

    def client(self) -> Client:
        if self._client is None:
            self._client = Client(settings=self.settings.replace(dsn=self.ready_dsn()))
        return self._client

    def close(self) -> None:
        if self._client is not None:
            self._client.close()
            self._client = None


def _settings(args: argparse.Namespace) -> Settings:
    settings = Settings.from_env()
    modules = tuple(
        m.strip() for m in (getattr(args, "workers", None) or "").split(",") if m.strip()
    )
    if modules or settings.worker_modules:
        # Like `python -m`, find worker modules in the current directory (console scripts do not).
        cwd = os.getcwd()
        if cwd not in sys.path:
            sys.path.insert(0, cwd)
    changes: dict[str, object] = {
        "dsn": getattr(args, "dsn", None),
        "storage": getattr(args, "storage", None),
        "data_dir": getattr(args, "data_dir", None),
        "worker_modules": settings.worker_modules + modules if modules else None,
    }
    for name in (
        "concurrency",
        "poll_interval",
        "heartbeat_interval",
        "stale_after",
        "shutdown_grace",
        "poll_only",
    ):
        changes[name] = getattr(args, name, None)
    try:
        return settings.replace(**changes)
    except ConfigurationError as exc:
        raise ConfigurationError(f"{exc} (check the flags and PGSTASK_* variables)") from None
