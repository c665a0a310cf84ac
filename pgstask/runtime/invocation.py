"""One call of an action, and how it ended.

The runner calls actions in its own thread, and the child process of a process-isolated action
calls them in the same way, through ``invoke``; an ``async def`` action is awaited on the
daemon's event loop through ``invoke_async``, where a stop request arrives as
``asyncio.CancelledError`` (its ``LoopFlag`` cancels the asyncio task) and ends the call as
``STOPPED``, as ``TaskStopped`` does in a thread. What the action marked, its result and message
stay on the ``TaskRun``; ``Ending`` says how the call ended. The runner turns both into an
``Outcome``.

What the action raised is described, not kept: an ``Ending`` is plain data that the child process
of a process-isolated action sends to the daemon as it is. A ``Snooze`` or ``Retry`` becomes its
own ending kind with its delay, any other exception its text, its traceback and the names of its
classes (``retry.exception_names``, which the worker's ``retry_on``/``fail_on`` match).
"""

from __future__ import annotations

import asyncio
import enum
import inspect
import traceback
from dataclasses import dataclass
from typing import Any

from pgstask.db import json_text
from pgstask.errors import Retry, Snooze, TaskStopped, checked_delay
from pgstask.retry import exception_names
from pgstask.workers.base import BaseWorker
from pgstask.workers.context import LoopFlag, Mark, TaskRun


class EndingKind(enum.Enum):
    """The ways a call of an action can end (the runner makes an outcome of each)."""

    RETURNED = "returned"  # the action returned (marked or not)
    STOPPED = "stopped"  # it let TaskStopped propagate, or returned while asked to stop
    SNOOZED = "snoozed"  # it raised Snooze: pending again after ``delay``, attempt not counted
    RETRY = "retry"  # it raised Retry: a failed attempt, retried after ``delay`` (None: backoff)
    RAISED = "raised"  # it raised any other exception (also SystemExit, KeyboardInterrupt)
    INVALID_RESULT = "invalid_result"  # it returned, but its result is not JSON-serialisable
    UNAVAILABLE = "unavailable"  # (process) the child could not load the worker or its options
    KILLED = "killed"  # (process) the runner killed the child after a stop request
    EXITED = "exited"  # (process) the child ended without reporting (exit code, signal)


@dataclass(frozen=True, slots=True)
class Ending:
    """How one call of an action ended; ``error`` and ``trace`` when it did not return."""

    kind: EndingKind
    error: str | None = None
    trace: str | None = None
    #: RAISED: the names of the exception's classes (``retry.exception_names``).
    names: tuple[str, ...] = ()
    #: SNOOZED: seconds until the task may run again; RETRY: seconds before the retry, None
    #: for the worker's backoff.
    delay: float | None = None
    #: SNOOZED: the message given to ``Snooze``.
    message: str | None = None


def invoke(worker: BaseWorker, method_name: str, run: TaskRun, options: Any) -> Ending:
    """Call ``method_name`` of ``worker`` for ``run.task`` with ``options`` (a copy of the
    task's data, or the instance of its options model: ``options.options_for``); never raises
    ``Exception``."""
    task = run.task
    method = getattr(worker, method_name)
    worker._runs[task.id] = run
    try:
        returned = method(task, options)
        if inspect.iscoroutine(returned):  # e.g. a sync decorator around an async method
            returned.close()
            raise TypeError(
                f"action method {method_name} returned a coroutine instead of running: define "
                "it with `async def` (a decorator must keep it a coroutine function)"
            )
        if run.stopping:  # the action returned without noticing the request to stop
            run.check()
    except TaskStopped:
        return Ending(EndingKind.STOPPED)
    except BaseException as exc:  # KeyboardInterrupt, GeneratorExit … too: never stuck
        return _raised(exc)
    finally:
        worker._runs.pop(task.id, None)
    return _returned(run)


async def invoke_async(worker: BaseWorker, method_name: str, run: TaskRun, options: Any) -> Ending:
    """Await the ``async def`` action ``method_name`` of ``worker`` for ``run.task`` with
    ``options`` (as ``invoke``), in the asyncio task its stop flag cancels; never raises
    ``Exception``. A run asked to stop before
    it starts does not call the action."""
    task = run.task
    flag, current = run.stop_flag, asyncio.current_task()
    if isinstance(flag, LoopFlag) and current is not None:
        flag.attach(current)
    if run.stopping:
        return Ending(EndingKind.STOPPED)
    worker._runs[task.id] = run
    try:
        await getattr(worker, method_name)(task, options)
        if run.stopping:  # it returned without noticing (or swallowed its cancellation)
            return Ending(EndingKind.STOPPED)
    except asyncio.CancelledError as exc:
        # Ours when the run was asked to stop; else the action's own (a failed attempt).
        return Ending(EndingKind.STOPPED) if run.stopping else _raised(exc)
    except TaskStopped:
        return Ending(EndingKind.STOPPED)
    except GeneratorExit:  # the coroutine is closed (a left-behind one, collected): let it go
        raise
    except BaseException as exc:
        return _raised(exc)
    finally:
        worker._runs.pop(task.id, None)
    return _returned(run)


def _returned(run: TaskRun) -> Ending:
    """The ending of an action that returned: its result must be JSON."""
    if run.mark is not Mark.FAILED and run.result is not None:
        # It goes in the completion batch, where one value jsonb refuses would fail them all.
        try:
            json_text(run.result)
        except ValueError as exc:
            return Ending(EndingKind.INVALID_RESULT, f"the result is not JSON-serialisable: {exc}")
    return Ending(EndingKind.RETURNED)


def _raised(exc: BaseException) -> Ending:
    """The ending of an action that raised ``exc``. A ``Snooze`` or ``Retry`` whose delay is not
    a valid one (changed after it was made, or by a subclass) ends as the error that says so."""
    trace = "".join(traceback.format_exception(exc))
    try:
        if isinstance(exc, Snooze):
            seconds = checked_delay("Snooze(seconds)", exc.seconds)
            return Ending(EndingKind.SNOOZED, delay=seconds, message=_text(exc.message))
        if isinstance(exc, Retry):
            delay = None if exc.delay is None else checked_delay("Retry(delay)", exc.delay)
            return Ending(EndingKind.RETRY, _describe(exc), trace, delay=delay)
    except Exception as bad:  # its own attributes: a bad delay, or a str() that raises
        exc = bad
    return Ending(EndingKind.RAISED, _describe(exc), trace, names=exception_names(exc))


def _describe(exc: BaseException) -> str:
    """``Type: text`` of an exception, even one whose ``str()`` raises."""
    try:
        text = str(exc)
    except Exception as broken:
        text = f"(its str() raised {type(broken).__name__})"
    return f"{type(exc).__name__}: {text}"


def _text(value: object) -> str | None:
    return None if value is None else str(value)
