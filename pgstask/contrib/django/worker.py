"""The pgstask workers that run Django's task functions: ``PGSTASK_WORKERS`` names this module
(``manage.py pgstask_daemon`` does it for you), with ``DJANGO_SETTINGS_MODULE`` set.

Importing it sets Django up (``django.setup()``) and defines two worker classes per queue of the
``PgstaskBackend``s of ``TASKS``: ``Queue[<queue>]`` (identifier ``django:<queue>``) runs the
``def`` functions in the daemon's threads, ``AsyncQueue[<queue>]`` (``django:<queue>:async``)
the ``async def`` ones on its event loop. ``PGSTASK_DJANGO_QUEUES`` (comma-separated) limits
them to some queues: a daemon claims only the tasks of the workers it has.

An action imports the function by the path in the task's data, calls it with the stored
arguments (a ``TaskContext`` first for ``takes_context``) by ``Task.call``/``acall`` (so a
function that changed between ``def`` and ``async def`` since its enqueue still runs), and
stores its return value, normalised to JSON, as the task's result. Django's ``task_started``
and ``task_finished`` are sent around each call (``signals``; ``final`` in ``task_finished``:
as the runner will decide, from the run's stop reason, attempts and retry rules). An exception
is a failed attempt, retried by pgstask's rules; the worker logs its class path beside
pgstask's record of the attempt, for ``TaskResult.errors``. Django's database connections are
closed or reused by Django's rules before and after each call, as around a request: those of
the daemon's thread for a ``def`` function, those of asgiref's thread for sync code (where the
async ORM runs) for an ``async def`` one.
"""

from __future__ import annotations

import asyncio
import os
from collections.abc import Coroutine, Mapping
from typing import Any

import django
from asgiref.sync import sync_to_async
from django.apps import apps
from django.conf import settings
from django.db import close_old_connections
from django.utils.module_loading import import_string

from pgstask.contrib.django import config, results, signals
from pgstask.contrib.django._compat import Task, TaskContext, TaskResult, normalize_json
from pgstask.contrib.django.backend import PgstaskBackend
from pgstask.errors import ConfigurationError, Snooze, TaskControl, TaskStopped
from pgstask.retry import RetryPolicy, exception_names
from pgstask.task import Task as Row
from pgstask.workers.base import BaseWorker
from pgstask.workers.context import StopReason, TaskRun

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


def _call_arguments(attempt: TaskResult[Any], meta: Mapping[str, Any]) -> list[Any]:
    args = list(meta.get("args", []))
    if attempt.task.takes_context:
        args.insert(0, TaskContext(task_result=attempt))
    return args


def _sender(task: Task[Any, Any]) -> type[Any]:
    """The class of the task's backend, the sender of Django's signals (``PgstaskBackend``
    when its alias is no longer in ``TASKS``)."""
    try:
        return type(task.get_backend())
    except Exception:
        return PgstaskBackend


def _is_final(worker: BaseWorker, run: TaskRun, exc: BaseException) -> bool:
    """Whether pgstask runs the task no more after its function raised ``exc``: as the
    runner decides from the run's stop reason, the attempts and the worker's retry rules
    (those the run was claimed with; in a child process of ``isolation: "process"``, which
    has none, the worker's settings)."""
    task = run.task
    if isinstance(exc, TaskStopped | asyncio.CancelledError):
        reason = run.stop_reason
        return reason is StopReason.CANCELLED or (
            reason is StopReason.TIMEOUT and task.attempts >= task.max_attempts
        )
    if isinstance(exc, Snooze):
        return False
    if task.attempts >= task.max_attempts:
        return True
    if isinstance(exc, TaskControl):
        return False  # Retry: retried while attempts are left
    policy = run.retry
    if policy is None:
        try:
            policy = _ANY_BACKOFF.for_worker(task.identifier, worker.settings)
        except ValueError:
            return True  # the runner refuses such settings: the task fails
    return policy.not_retried(exception_names(exc)) is not None


# Only the worker's retry_on/fail_on matter to _is_final, not the delays.
_ANY_BACKOFF = RetryPolicy(base_delay=1.0, max_delay=1.0)


_close_old_connections = sync_to_async(close_old_connections)


def _class_path(exc: BaseException) -> str:
    kind = type(exc)
    return f"{kind.__module__}.{kind.__qualname__}"


class DjangoFunctions(BaseWorker):
    """Runs the ``def`` task functions of one queue (a subclass per queue sets the identifier)."""

    scope = "django"
    icon = "play"

    def task_run(self, task: Row, options: dict[str, Any]) -> None:
        """Call the function the task names; its return value is the task's result. Django's
        ``task_started`` and ``task_finished`` are sent around the call."""
        close_old_connections()
        try:
            django_task = results.task_of(options)
            attempt = results.attempt_of(task, django_task)
            sender = _sender(django_task)
            signals.started(sender, attempt)
            try:
                value = django_task.call(
                    *_call_arguments(attempt, options), **options.get("kwargs", {})
                )
            except BaseException as exc:
                if not isinstance(exc, TaskStopped | TaskControl):
                    self.log(
                        task,
                        "info",
                        results.RAISED,
                        exception_class_path=_class_path(exc),
                        attempt=task.attempts,
                    )
                results.end_attempt(attempt, error=exc)
                signals.finished(sender, attempt, final=_is_final(self, self._run_of(task), exc))
                raise
            self._finish(task, attempt, value)
            signals.finished(sender, attempt, final=True)
        finally:
            close_old_connections()

    def _finish(self, task: Row, attempt: TaskResult[Any], value: Any) -> None:
        try:
            normalized = normalize_json(value)
        except (TypeError, ValueError) as exc:
            self.mark_failed(
                task, f"the return value of {attempt.task.module_path} is not JSON: {exc}"
            )
            results.end_attempt(attempt, error=exc)
            return
        self.mark_finished(task, result=normalized)
        results.end_attempt(attempt, value=normalized)


class AsyncDjangoFunctions(BaseWorker):
    """Runs the ``async def`` task functions of one queue on the daemon's event loop."""

    scope = "django"
    icon = "play"

    async def task_run(self, task: Row, options: dict[str, Any]) -> None:
        """Await the coroutine function the task names; its return value is the result.
        Django's ``task_started`` and ``task_finished`` are sent around the call."""
        # Django's async ORM runs its queries in asgiref's one thread for sync code: its
        # connections there are closed or reused by Django's rules around each call, as the
        # def functions' are in theirs (else a connection broken once fails every later call).
        await _close_old_connections()
        try:
            django_task = results.task_of(options)
            attempt = results.attempt_of(task, django_task)
            sender = _sender(django_task)
            await signals.astarted(sender, attempt)
            try:
                value = await django_task.acall(
                    *_call_arguments(attempt, options), **options.get("kwargs", {})
                )
            except BaseException as exc:
                if isinstance(exc, Exception) and not isinstance(exc, TaskStopped | TaskControl):
                    await self.log(
                        task,
                        "info",
                        results.RAISED,
                        exception_class_path=_class_path(exc),
                        attempt=task.attempts,
                    )
                results.end_attempt(attempt, error=exc)
                final = _is_final(self, self._run_of(task), exc)
                await _shielded(signals.afinished(sender, attempt, final=final))
                raise
            await self._finish(task, attempt, value)
            await signals.afinished(sender, attempt, final=True)
        finally:
            await _close_old_connections()

    async def _finish(self, task: Row, attempt: TaskResult[Any], value: Any) -> None:
        try:
            normalized = normalize_json(value)
        except (TypeError, ValueError) as exc:
            await self.mark_failed(
                task, f"the return value of {attempt.task.module_path} is not JSON: {exc}"
            )
            results.end_attempt(attempt, error=exc)
            return
        await self.mark_finished(task, result=normalized)
        results.end_attempt(attempt, value=normalized)


async def _shielded(sending: Coroutine[Any, Any, None]) -> None:
    """``sending`` to its end even when the action is being cancelled (a stop reaches an
    ``async def`` function as ``CancelledError``), so ``task_finished`` follows ``task_started``."""
    await asyncio.shield(sending)


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
