"""A pgstask task as Django's ``TaskResult`` (docs/django.md, "Results").

| pgstask status | Django status |
|---|---|
| pending, waiting | ``READY`` (also between a failed attempt and its retry) |
| preparing, running | ``RUNNING`` |
| completed | ``SUCCESSFUL``; ``return_value`` is the task's ``result`` |
| failed | ``FAILED`` |
| cancelled | ``FAILED``, its last error ``pgstask.errors.TaskCancelled`` |

``errors`` has one ``TaskError`` per failed attempt, from the task's log: pgstask logs each
failed attempt with its traceback, and the worker that runs Django's functions logs the class of
what the function raised beside it (``exception_class_path``). An attempt that failed without an
exception of the function (a timeout, a killed child process) is a ``builtins.RuntimeError``
with pgstask's message as its traceback; so is a failure whose log records were cleaned up.
"""

from __future__ import annotations

import datetime as dt
import traceback
from collections.abc import Mapping, Sequence
from typing import Any

from django.conf import settings
from django.utils import timezone
from django.utils.module_loading import import_string

from pgstask.contrib.django._compat import (
    InvalidTask,
    Task,
    TaskError,
    TaskResult,
    TaskResultStatus,
)
from pgstask.logs import LogRecord
from pgstask.task import Status
from pgstask.task import Task as Row

#: The message of the record the worker logs when a function raised.
RAISED = "the task function raised"
FALLBACK = "builtins.RuntimeError"
CANCELLED = "pgstask.errors.TaskCancelled"

_STATUSES = {
    Status.PENDING: TaskResultStatus.READY,
    Status.WAITING: TaskResultStatus.READY,
    Status.PREPARING: TaskResultStatus.RUNNING,
    Status.RUNNING: TaskResultStatus.RUNNING,
    Status.COMPLETED: TaskResultStatus.SUCCESSFUL,
    Status.CANCELLED: TaskResultStatus.FAILED,
    Status.FAILED: TaskResultStatus.FAILED,
}


def task_of(meta: Mapping[str, Any]) -> Task[Any, Any]:
    """The Django ``Task`` a pgstask task's data names, with the priority, queue and backend it
    was enqueued with; ``InvalidTask`` when its path names no task any more."""
    path = meta.get("task")
    try:
        found = import_string(str(path))
    except ImportError as exc:
        raise InvalidTask(f"cannot import the task {path!r}: {exc}") from exc
    if not isinstance(found, Task):
        raise InvalidTask(f"{path!r} is not a task (a function decorated with @task)")
    changes: dict[str, Any] = {
        "priority": meta.get("priority", found.priority),
        "queue_name": meta.get("queue", found.queue_name),
        "backend": meta.get("backend", found.backend),
    }
    return found.using(**changes)


def errors_of(row: Row, records: Sequence[LogRecord]) -> list[TaskError]:
    """One ``TaskError`` per failed attempt of ``row`` (oldest first), from its log."""
    classes: dict[Any, str] = {}
    failures: list[LogRecord] = []
    for record in records:
        if record.message == RAISED and "exception_class_path" in record.context:
            classes[record.context.get("attempt")] = str(record.context["exception_class_path"])
        elif record.level == "error" and "attempt" in record.context:
            failures.append(record)
    errors = [
        TaskError(
            exception_class_path=classes.get(record.context["attempt"], FALLBACK),
            traceback=str(record.context.get("traceback") or record.message),
        )
        for record in failures
    ]
    if row.status == Status.CANCELLED:
        errors.append(TaskError(exception_class_path=CANCELLED, traceback=row.message or ""))
    elif row.status == Status.FAILED and not errors:
        text = row.last_error or row.message or "failed"
        errors.append(TaskError(exception_class_path=FALLBACK, traceback=text))
    return errors


def result_of(
    row: Row,
    records: Sequence[LogRecord],
    *,
    task: Task[Any, Any] | None = None,
    alias: str | None = None,
) -> TaskResult[Any]:
    """Django's ``TaskResult`` of the pgstask task ``row`` (``records``: its log)."""
    meta = row.meta
    django_task = task if task is not None else task_of(meta)
    status = _STATUSES.get(Status(row.status), TaskResultStatus.READY)
    result: TaskResult[Any] = TaskResult(
        task=django_task,
        id=str(meta.get("result_id", "")),
        status=status,
        enqueued_at=_local(row.created_at),
        started_at=_local(row.started_at),
        finished_at=_local(row.finished_at) if status in _ENDED else None,
        last_attempted_at=_local(row.started_at),
        args=list(meta.get("args", [])),
        kwargs=dict(meta.get("kwargs", {})),
        backend=alias or str(meta.get("backend", django_task.backend)),
        errors=errors_of(row, records),
        # pgstask keeps the daemon of the latest claim only: one entry per attempt, that one.
        worker_ids=[str(row.daemon_id or "unknown")] * row.attempts,
    )
    if status == TaskResultStatus.SUCCESSFUL:
        object.__setattr__(result, "_return_value", row.result)
    return result


_ENDED = frozenset({TaskResultStatus.SUCCESSFUL, TaskResultStatus.FAILED})


def attempt_of(row: Row, task: Task[Any, Any]) -> TaskResult[Any]:
    """The ``RUNNING`` result of the attempt of ``row`` that starts now (in the daemon): its
    ``attempts`` is the attempt's number; the ``TaskContext`` of the function and the
    ``task_started`` signal get it."""
    result = result_of(row, [], task=task)
    object.__setattr__(result, "status", TaskResultStatus.RUNNING)
    return result


def end_attempt(
    result: TaskResult[Any], *, value: Any = None, error: BaseException | None = None
) -> None:
    """Make the result of ``attempt_of`` that of the attempt's end, for ``task_finished``:
    ``SUCCESSFUL`` with the JSON ``value``, or ``FAILED`` with ``error`` as its one
    ``TaskError`` (as Django's backends do: the attempt's own error)."""
    object.__setattr__(result, "finished_at", timezone.now())
    if error is None:
        object.__setattr__(result, "status", TaskResultStatus.SUCCESSFUL)
        object.__setattr__(result, "_return_value", value)
        return
    kind = type(error)
    text = "".join(traceback.format_exception(error))
    path = f"{kind.__module__}.{kind.__qualname__}"
    result.errors.append(TaskError(exception_class_path=path, traceback=text))
    object.__setattr__(result, "status", TaskResultStatus.FAILED)


def _local(value: dt.datetime | None) -> dt.datetime | None:
    """A time of the row as Django gives its datetimes: aware with ``USE_TZ``, else naive in
    ``TIME_ZONE`` (as ``timezone.now()`` and the ORM are then)."""
    if value is None or settings.USE_TZ:
        return value
    return timezone.make_naive(value)
