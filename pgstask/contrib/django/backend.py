"""``PgstaskBackend``: Django's task backend on pgstask (docs/django.md).

``TASKS = {"default": {"BACKEND": "pgstask.contrib.django.PgstaskBackend"}}``. ``enqueue``
stores a task of the worker of the function's queue (``django:<queue>``, or
``django:<queue>:async`` for an ``async def`` function) whose data holds the function's import
path, its JSON arguments, the Django priority, queue and backend, and the result id: a UUID
chosen here, so that it is known at once even when the insert waits for ``on_commit``; it is
also the task's ``dedupe_key`` (``django:<uuid>``), by which ``get_result`` finds the task.
``database`` says when the insert happens; ``results`` how a row reads as a ``TaskResult``.
Django's ``task_enqueued`` signal is sent once the row is inserted (``signals``): at once in
Django's transaction, after the commit with ``on_commit``, when ``enqueued_at`` is set too.
"""

from __future__ import annotations

import uuid
from inspect import iscoroutinefunction
from typing import Any

from django.core import checks
from django.core.exceptions import ImproperlyConfigured
from django.utils import timezone

from pgstask import logs, queries
from pgstask.client import Client
from pgstask.contrib.django import config, database, results, signals
from pgstask.contrib.django._compat import (
    BaseTaskBackend,
    InvalidTask,
    Task,
    TaskResult,
    TaskResultDoesNotExist,
    TaskResultStatus,
)
from pgstask.db import Conn
from pgstask.errors import ConfigurationError
from pgstask.logs import LogRecord
from pgstask.task import Task as Row


class PgstaskBackend(BaseTaskBackend):
    """Django's task backend that stores tasks in pgstask's ``s_tasks`` and reads their
    results back; ``pgstask daemon`` (or ``manage.py pgstask_daemon``) runs them."""

    supports_defer = True
    supports_async_task = True
    supports_get_result = True
    supports_priority = True

    def __init__(self, alias: str, params: dict[str, Any]) -> None:
        super().__init__(alias, params)
        try:
            self.config = config.BackendConfig.from_params(alias, params)
        except ConfigurationError as exc:
            raise ImproperlyConfigured(str(exc)) from exc

    def validate_task(self, task: Task[Any, Any]) -> None:
        """Django's checks (module-level function, priority range, aware ``run_after``, a queue
        of ``QUEUES``)."""
        super().validate_task(task)

    def enqueue(self, task: Task[Any, Any], args: Any, kwargs: Any) -> TaskResult[Any]:
        """Store ``task(*args, **kwargs)`` as a pgstask task (in Django's transaction when it
        can, else on commit) and return its ``READY`` result; ``task_enqueued`` is sent with
        that result when the row is inserted."""
        self.validate_task(task)
        result_id = str(uuid.uuid4())
        try:
            result: TaskResult[Any] = TaskResult(
                task=task,
                id=result_id,
                status=TaskResultStatus.READY,
                enqueued_at=None,
                started_at=None,
                finished_at=None,
                last_attempted_at=None,
                args=args,
                kwargs=kwargs,
                backend=self.alias,
                errors=[],
                worker_ids=[],
            )
        except (TypeError, ValueError) as exc:
            raise type(exc)(
                f"the arguments of task {task.module_path} must be JSON values (str, int, "
                f"float, bool, None, lists and dicts of them): {exc}"
            ) from exc
        meta = {
            "task": task.module_path,
            "args": result.args,
            "kwargs": result.kwargs,
            "result_id": result_id,
            "backend": self.alias,
            "queue": task.queue_name,
            "priority": task.priority,
        }
        identifier = config.identifier(task.queue_name, asynchronous=iscoroutinefunction(task.func))
        start_at = config.start_at(task.run_after, timezone.get_default_timezone())

        def insert(client: Client, conn: Conn | None) -> None:
            client.create(
                identifier,
                config.ACTION,
                meta,
                priority=config.priority(task.priority),
                start_at=start_at,
                max_attempts=self.config.max_attempts,
                dedupe_key=config.dedupe_key(result_id),
                conn=conn,
            )

        def inserted() -> None:
            # As Django's database backend after its save: in the caller's transaction, or
            # in on_commit when the save waits for the commit.
            object.__setattr__(result, "enqueued_at", timezone.now())
            signals.enqueued(type(self), result)

        database.write(self.config, insert, then=inserted)
        return result

    def get_result(self, result_id: str) -> TaskResult[Any]:
        """The result of the task enqueued as ``result_id``; ``TaskResultDoesNotExist`` when
        there is none (a rolled-back enqueue, a task cleaned up after its retention)."""
        try:
            key = config.dedupe_key(str(uuid.UUID(str(result_id))))
        except ValueError:
            raise TaskResultDoesNotExist(result_id) from None
        found = database.read(self.config, lambda conn: _find(conn, key))
        if found is None:
            raise TaskResultDoesNotExist(result_id)
        try:
            return results.result_of(*found, alias=self.alias)
        except InvalidTask as exc:
            raise TaskResultDoesNotExist(f"{result_id}: {exc}") from exc

    def check(self, **kwargs: Any) -> list[Any]:
        """Django's system checks: pgstask's database can be found."""
        try:
            database.dsn_of(self.config)
        except ConfigurationError as exc:
            return [checks.Error(str(exc), id="pgstask.E001")]
        return []


def _find(conn: Conn, key: str) -> tuple[Row, list[LogRecord]] | None:
    """The task of Django's whose ``dedupe_key`` is ``key``, and its log; None if there is none."""
    row = queries.task_get_latest_by_dedupe_key(conn, dedupe_key=key)
    if row is None or not row.identifier.startswith(config.PREFIX):
        return None
    return row, logs.read(conn, row.id)
