"""What every part of the ``Client`` facade stands on: its settings, its connection pool (opened
on first use, with the embedded PostgreSQL's DSN when none is configured), ``connection()`` for
one unit of work, and ``get()``, reading a task by id."""

from __future__ import annotations

import contextlib
import threading
from collections.abc import Iterator, Mapping
from typing import Any, Self

from psycopg_pool import ConnectionPool

from pgstask import queries
from pgstask.db import Conn, make_pool, translate_errors
from pgstask.errors import InvalidTaskError, TaskNotFoundError
from pgstask.settings import Settings
from pgstask.task import Task
from pgstask.workers.actions import action_key


def resolve_dsn(settings: Settings) -> str:
    """The configured DSN, or the embedded PostgreSQL's (started if needed)."""
    if settings.dsn:
        return settings.dsn
    from pgstask import embedded

    return embedded.start(settings.data_dir)


def registered_action_problem(conn: Conn, identifier: str, action: str) -> str | None:
    """Why ``action`` is not one of worker ``identifier``'s as its registered row lists them
    (``s_workers.actions``), or None. An unregistered worker, or one registered without its
    list, passes: a daemon may register it later, and ``Client.create`` accepts it too."""
    return action_problem(queries.worker_get(conn, identifier=identifier), identifier, action)


def action_problem(worker: Mapping[str, Any] | None, identifier: str, action: str) -> str | None:
    """``registered_action_problem`` of the worker's row (None: not registered), without I/O."""
    actions = (worker or {}).get("actions") or []
    if actions and action_key(action) not in {action_key(a) for a in actions}:
        return f"worker {identifier!r} has no action {action!r} (its actions: {', '.join(actions)})"
    return None


def _task_id(task: Task | int) -> int:
    if isinstance(task, Task):
        return task.id
    if isinstance(task, bool) or not isinstance(task, int):
        raise InvalidTaskError(f"a task id is a whole number, not {task!r}")
    return task


class ClientBase:
    """The pool and the connections of a ``Client`` (see there)."""

    def __init__(self, dsn: str | None = None, *, settings: Settings | None = None) -> None:
        self.settings = settings or Settings.from_env()
        if dsn is not None:
            self.settings = self.settings.replace(dsn=dsn)
        self._dsn: str | None = self.settings.dsn
        self._pool: ConnectionPool[Conn] | None = None
        self._lock = threading.Lock()

    # --- plumbing ----------------------------------------------------------------------------

    @property
    def dsn(self) -> str:
        """The DSN the pool connects to: the configured one, or the embedded PostgreSQL's (started
        on first use)."""
        if self._dsn is None:
            self._dsn = resolve_dsn(self.settings)
        return self._dsn

    def _get_pool(self) -> ConnectionPool[Conn]:
        with self._lock:
            if self._pool is None:
                self._pool = make_pool(self.dsn, max_size=4, name="pgstask-client")
            return self._pool

    @contextlib.contextmanager
    def connection(self, conn: Conn | None = None, *, autocommit: bool = False) -> Iterator[Conn]:
        """``conn`` itself (the caller's transaction), or a pooled one committed on success.
        ``autocommit``: for a single statement, a pooled connection where the statement is its
        own transaction: one round trip instead of three (BEGIN, the statement, COMMIT), and as
        durable when it returns."""
        if conn is not None:
            with translate_errors():
                yield conn
            return
        with translate_errors(), self._get_pool().connection() as pooled:
            if not autocommit:
                yield pooled
                return
            pooled.autocommit = True
            try:
                yield pooled
            finally:
                if not pooled.broken:
                    pooled.autocommit = False

    def open(self) -> None:
        """Open the pool now rather than on first use (a web app's start does, so that an
        unreachable database fails the start, not the first request)."""
        self._get_pool()

    def close(self) -> None:
        """Close the pool, if one was opened; a later call opens a new one."""
        with self._lock:
            if self._pool is not None:
                self._pool.close()
                self._pool = None

    def __enter__(self) -> Self:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    # --- reading ----------------------------------------------------------------------------

    def get(self, task: Task | int) -> Task:
        """The task with that id; ``TaskNotFoundError`` if there is none."""
        task_id = _task_id(task)
        with self.connection() as c:
            found = queries.task_get(c, id=task_id)
        if found is None:
            raise TaskNotFoundError(task_id)
        return found
