"""What every command shares: exit codes and ``Context``.

``Context`` turns the parsed arguments into ``Settings`` (``PGSTASK_*`` environment first, flags
over it), resolves the database (the configured DSN, or the embedded PostgreSQL, announced on
stderr by the command that creates or starts it), makes sure the schema is there (migrating the
embedded database automatically; on a configured database a missing or old schema is an error
that says to run ``pgstask migrate``), and hands out one ``Client``.
"""

from __future__ import annotations

import argparse
import os
import sys
from collections.abc import Callable
from typing import TextIO

import psycopg
from psycopg.conninfo import conninfo_to_dict

from pgstask import embedded
from pgstask.client import Client
from pgstask.db import translate_errors
from pgstask.errors import ConfigurationError, DatabaseError, PgstaskError, SchemaError
from pgstask.settings import Settings

EXIT_OK = 0
EXIT_FAILED = 1  # a task failed or was cancelled (run-once, tasks watch, create --wait)
EXIT_USAGE = 2  # bad flag, environment variable, JSON or task field
EXIT_DATABASE = 3  # PostgreSQL unreachable, refused a statement, or schema missing/old
EXIT_NOT_FOUND = 4  # no task with that id / no worker, schedule or preset of that name
EXIT_STATE = 5  # the task's status does not allow the operation
EXIT_INTERRUPTED = 130  # Ctrl-C in a command other than daemon/run-once

EXIT_CODES_HELP = """\
exit codes:
  0  success
  1  a task failed or was cancelled (run-once, tasks watch, create --wait)
  2  usage error: bad flag, PGSTASK_* variable, JSON, task, schedule, preset or webhook field
  3  database error: PostgreSQL unreachable, or its schema missing/old (run `pgstask migrate`)
  4  not found: no task with that id, no worker, schedule, preset or webhook of that name
  5  wrong state: e.g. cancelling a finished task, retrying a completed one

Settings come from PGSTASK_* environment variables (PGSTASK_DSN, PGSTASK_STORAGE,
PGSTASK_WORKERS, PGSTASK_CONCURRENCY, PGSTASK_POLL_INTERVAL, …); flags override them.
Without PGSTASK_DSN, pgstask starts (or reuses) an embedded PostgreSQL in PGSTASK_DATA_DIR
(default .pgstask/pgdata) and migrates it automatically."""

Handler = Callable[["Context"], int]


class Context:
    """Settings, database and client of one command invocation."""

    def __init__(
        self, args: argparse.Namespace, *, out: TextIO | None = None, err: TextIO | None = None
    ) -> None:
        self.args = args
        self.out = out or sys.stdout
        self.err = err or sys.stderr
        self.settings = _settings(args)
        self.dsn_source = dsn_source(args)
        self._dsn: str | None = None
        self._ready = False
        self._client: Client | None = None

    @property
    def embedded(self) -> bool:
        """True when no DSN is configured: the command uses the embedded PostgreSQL."""
        return self.settings.dsn is None

    def note(self, message: str) -> None:
        """A one-line notice on stderr (never on stdout, which scripts read)."""
        self.err.write(f"pgstask: {message}\n")
        self.err.flush()

    def dsn(self) -> str:
        """The configured DSN, or the embedded PostgreSQL's (started if needed)."""
        if self._dsn is None:
            if self.settings.dsn is not None:
                self._dsn = self.settings.dsn
            else:
                self._dsn = self.start_embedded()
        return self._dsn

    def start_embedded(self) -> str:
        """The embedded PostgreSQL's DSN, started if needed. Said on stderr only when this
        command creates or starts it: a command that finds it running says nothing."""
        path = self.settings.data_dir.expanduser().resolve()
        found = embedded.state(path)
        if not found.running:
            verb = "starting" if found.created else "creating and starting"
            self.note(
                f"{verb} the embedded PostgreSQL in {path} (set PGSTASK_DSN to use your own "
                "database; `pgstask db stop` stops it)"
            )
        return embedded.start(path)

    def ready_dsn(self) -> str:
        """``dsn()``, with the embedded database migrated to this pgstask's revision.

        A configured database is not checked up front (that would cost every command the import
        of alembic and a connection): a missing schema surfaces as ``SchemaError`` from the first
        query, and ``explain`` turns other database errors into one when the schema is old.
        """
        dsn = self.dsn()
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
        """The command's one ``Client``, on the database ``ready_dsn`` gives (made on
        first use)."""
        if self._client is None:
            self._client = Client(settings=self.settings.replace(dsn=self.ready_dsn()))
        return self._client

    def close(self) -> None:
        """Close the client, if one was made: when the command ends, and before ``db psql``
        replaces the process."""
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
        "async_concurrency",
        "poll_interval",
        "heartbeat_interval",
        "stale_after",
        "shutdown_grace",
        "poll_only",
    ):
        changes[name] = getattr(args, name, None)
    try:
        settings = settings.replace(**changes)
    except ConfigurationError as exc:
        raise ConfigurationError(f"{exc} (check the flags and PGSTASK_* variables)") from None
    if settings.dsn is not None:
        check_dsn(settings.dsn, dsn_source(args))
    return settings


def dsn_source(args: argparse.Namespace) -> str:
    """Where the DSN came from, as the user wrote it: ``--dsn`` or ``PGSTASK_DSN``."""
    return "--dsn" if getattr(args, "dsn", None) is not None else "PGSTASK_DSN"


def check_dsn(dsn: str, source: str) -> None:
    """``ConfigurationError`` (exit 2) naming ``source`` if ``dsn`` cannot be a connection
    string: libpq's parse, and ports that are not numbers (libpq finds those only when it
    connects, which would make them look like an unreachable server). The DSN itself is not
    repeated: it may hold a password."""
    try:
        params = conninfo_to_dict(dsn)
    except psycopg.Error as exc:
        why = str(exc).strip()
        raise ConfigurationError(
            f"{source} is not a valid PostgreSQL connection string ({why}); use a URI "
            "(postgresql://user:password@host:5432/dbname) or key=value pairs "
            "(host=… port=… dbname=… user=…)"
        ) from None
    for port in str(params.get("port") or "").split(","):
        if port.strip() and not (port.strip().isdigit() and 0 < int(port) < 65536):
            raise ConfigurationError(
                f"{source} has the port {port.strip()!r}; a port is a number from 1 to 65535"
            )
