"""The pgstask workers that run Django's task functions: ``PGSTASK_WORKERS`` names this module
(``manage.py pgstask_daemon`` does it for you), with ``DJANGO_SETTINGS_MODULE`` set.

Importing it sets Django up (``django.setup()``) and defines two worker classes per queue of the
``PgstaskBackend``s of ``TASKS``: ``Queue[<queue>]`` (identifier ``django:<queue>``) runs the
``def`` functions in the daemon's threads, ``AsyncQueue[<queue>]`` (``django:<queue>:async``)
the ``async def`` ones on its event loop. ``PGSTASK_DJANGO_QUEUES`` (comma-separated) limits
them to some queues: a daemon claims only the tasks of the workers it has.

An action imports the function by the path in the task's data, calls it with the stored
arguments (a ``TaskContext`` first for ``takes_context``) by ``Task.call``/``acall`` (so a
function that changed between ``def`` and ``async def`` since its enqueue still runs), and stores
its return value,
normalised to JSON, as the task's result. An exception is a failed attempt, retried by pgstask's
rules; the worker logs its class path beside pgstask's record of the attempt, for
``TaskResult.errors``. Django's database connections are closed or reused by Django's rules
before and after each call, as around a request: those of the daemon's thread for a ``def``
function, those of asgiref's thread for sync code (where the async ORM runs) for an ``async def``
one.
"""

from __future__ import annotations

import os
from collections.abc import Mapping
from typing import Any

import django
from asgiref.sync import sync_to_async
from django.apps import apps
from django.conf import settings
from django.db import close_old_connections
from django.utils.module_loading import import_string

from pgstask.contrib.django import config, results
from pgstask.contrib.django._compat import Task, TaskContext, normalize_json
from pgstask.contrib.django.backend import PgstaskBackend
from pgstask.errors import ConfigurationError, TaskControl, TaskStopped
from pgstask.task import Task as Row
from pgstask.workers.base import BaseWorker

#: The variable that limits the queues this process serves (comma-separated names).
QUEUES_VARIABLE = "PGSTASK_DJANGO_QUEUES"
BACKEND_CLASS = "pgstask.contrib.django.backend.PgstaskBackend"


def setup() -> None:
    """Set Django up once, from ``DJANGO_SETTINGS_MODULE``."""
    if apps.ready:
        return
    if not os.environ.get("DJANGO_SETTINGS_MODULE") and not settings.configured:
        raise ConfigurationError(
            "pgstask.contrib.django.worker runs Django's tasks and needs Django's settings: set "
            "DJANGO_SETTINGS_MODULE (e.g. mysite.settings), or run `manage.py pgstask_daemon`"
        )
    django.setup()


def backend_queues() -> dict[str, str]:
    """Every queue of the ``PgstaskBackend``s of ``TASKS``, with the alias of one backend."""
    found: dict[str, str] = {}
    tasks: Mapping[str, Any] = getattr(settings, "TASKS", {}) or {}
    for alias, params in tasks.items():
        backend = import_string(params.get("BACKEND", ""))
        if isinstance(backend, type) and issubclass(backend, PgstaskBackend):
            for queue in config.BackendConfig.from_params(alias, params).queues:
                found.setdefault(queue, alias)
    return found


def served_queues(environ: Mapping[str, str] = os.environ) -> list[str]:
    """The queues this process serves: those of ``PGSTASK_DJANGO_QUEUES``, else all."""
    known = backend_queues()
    if not known:
        raise ConfigurationError(
            f"no backend of Django's TASKS setting is {BACKEND_CLASS}: there is no queue to serve"
        )
    wanted = [q.strip() for q in environ.get(QUEUES_VARIABLE, "").split(",") if q.strip()]
    unknown = [q for q in wanted if q not in known]
    if unknown:
        raise ConfigurationError(
            f"{QUEUES_VARIABLE} names queues no pgstask backend of TASKS has: "
            f"{', '.join(unknown)} (their queues: {', '.join(sorted(known))})"
        )
    return wanted or sorted(known)


def _call_arguments(row: Row, task: Task[Any, Any], meta: Mapping[str, Any]) -> list[Any]:
    args = list(meta.get("args", []))
    if task.takes_context:
        running = results.result_of(row, [], task=task)
        args.insert(0, TaskContext(task_result=running))
    return args


_close_old_connections = sync_to_async(close_old_connections)


def _class_path(exc: BaseException) -> str:
    kind = type(exc)
    return f"{kind.__module__}.{kind.__qualname__}"


class DjangoFunctions(BaseWorker):
    """Runs the ``def`` task functions of one queue (a subclass per queue sets the identifier)."""

    scope = "django"
    icon = "play"

    def task_run(self, task: Row, options: dict[str, Any]) -> None:
        """Call the function the task names; its return value is the task's result."""
        close_old_connections()
        try:
            django_task = results.task_of(options)
            args = _call_arguments(task, django_task, options)
            try:
                value = django_task.call(*args, **options.get("kwargs", {}))
            except (TaskStopped, TaskControl):
                raise
            except BaseException as exc:
                self.log(
                    task,
                    "info",
                    results.RAISED,
                    exception_class_path=_class_path(exc),
                    attempt=task.attempts,
                )
                raise
            self._finish(task, django_task, value)
        finally:
            close_old_connections()

    def _finish(self, task: Row, django_task: Task[Any, Any], value: Any) -> None:
        try:
            self.mark_finished(task, result=normalize_json(value))
        except (TypeError, ValueError) as exc:
            self.mark_failed(
                task, f"the return value of {django_task.module_path} is not JSON: {exc}"
            )


class AsyncDjangoFunctions(BaseWorker):
    """Runs the ``async def`` task functions of one queue on the daemon's event loop."""

    scope = "django"
    icon = "play"

    async def task_run(self, task: Row, options: dict[str, Any]) -> None:
        """Await the coroutine function the task names; its return value is the result."""
        # Django's async ORM runs its queries in asgiref's one thread for sync code: its
        # connections there are closed or reused by Django's rules around each call, as the
        # def functions' are in theirs (else a connection broken once fails every later call).
        await _close_old_connections()
        try:
            django_task = results.task_of(options)
            args = _call_arguments(task, django_task, options)
            try:
                value = await django_task.acall(*args, **options.get("kwargs", {}))
            except (TaskStopped, TaskControl):
                raise
            except Exception as exc:
                await self.log(
                    task,
                    "info",
                    results.RAISED,
                    exception_class_path=_class_path(exc),
                    attempt=task.attempts,
                )
                raise
            try:
                await self.mark_finished(task, result=normalize_json(value))
            except (TypeError, ValueError) as exc:
                await self.mark_failed(
                    task, f"the return value of {django_task.module_path} is not JSON: {exc}"
                )
        finally:
            await _close_old_connections()


def _define(queue: str) -> None:
    """The two worker classes of ``queue``, as attributes of this module (their class paths
    ``pgstask.contrib.django.worker:Queue[<queue>]`` import them back, in a child process
    too)."""
    for base, name, asynchronous in (
        (DjangoFunctions, f"Queue[{queue}]", False),
        (AsyncDjangoFunctions, f"AsyncQueue[{queue}]", True),
    ):
        kind = "async def" if asynchronous else "def"
        cls = type(
            name,
            (base,),
            {
                "__module__": __name__,
                "__qualname__": name,
                "identifier": config.identifier(queue, asynchronous=asynchronous),
                "title": f"Django queue {queue} ({kind})",
                "description": f"Runs the {kind} task functions of Django's queue {queue!r}.",
            },
        )
        globals()[name] = cls


setup()
for _queue in served_queues():
    _define(_queue)
