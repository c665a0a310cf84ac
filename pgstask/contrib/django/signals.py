"""Django's task signals (``task_enqueued``, ``task_started``, ``task_finished``) of the module
``_compat`` takes Django's task API from, sent as Django's own backends send them: the sender is
the backend's class, the one argument ``task_result``; docs/django.md, "Signals".

``enqueued`` is sent in the enqueuing process once the task's row is inserted; ``started`` and
``finished`` in the daemon around each call of the function, ``finished`` with pgstask's
``final``: whether the attempt ends the task (no retry follows). Unlike Django's backends,
which use ``send``, these use ``send_robust``: a receiver that raises (an error tracker that
cannot reach its server) changes neither the enqueue nor the task's outcome. Django logs its
exception with the traceback (logger ``django.dispatch``); this module adds which signal, task
and result it was (logger ``pgstask.contrib.django.signals``).
"""

from __future__ import annotations

import logging
from typing import Any

from pgstask.contrib.django._compat import (
    TaskResult,
    task_enqueued,
    task_finished,
    task_started,
)

_log = logging.getLogger(__name__)


def enqueued(sender: type[Any], result: TaskResult[Any]) -> None:
    """``task_enqueued``: the task of ``result`` is stored (or is, in the enqueue's
    transaction)."""
    _report("task_enqueued", result, task_enqueued.send_robust(sender, task_result=result))


def started(sender: type[Any], result: TaskResult[Any]) -> None:
    """``task_started``: an attempt of ``result`` (``RUNNING``) calls the function now."""
    _report("task_started", result, task_started.send_robust(sender, task_result=result))


def finished(sender: type[Any], result: TaskResult[Any], *, final: bool) -> None:
    """``task_finished``: the attempt of ``result`` ended (``SUCCESSFUL`` or ``FAILED``);
    ``final``: no retry follows it."""
    answers = task_finished.send_robust(sender, task_result=result, final=final)
    _report("task_finished", result, answers)


async def astarted(sender: type[Any], result: TaskResult[Any]) -> None:
    """``started`` from the daemon's event loop: sync receivers run in asgiref's thread for
    sync code (where Django's ORM may be used), as in an async view."""
    answers = await task_started.asend_robust(sender, task_result=result)
    _report("task_started", result, answers)


async def afinished(sender: type[Any], result: TaskResult[Any], *, final: bool) -> None:
    """``finished`` from the daemon's event loop."""
    answers = await task_finished.asend_robust(sender, task_result=result, final=final)
    _report("task_finished", result, answers)


def _report(name: str, result: TaskResult[Any], answers: list[tuple[Any, Any]]) -> None:
    for receiver, answer in answers:
        if isinstance(answer, BaseException):
            _log.error(
                "a receiver of Django's %s signal, %s, raised %s: %s (result %s of %s); the "
                "task is not affected",
                name,
                getattr(receiver, "__qualname__", repr(receiver)),
                type(answer).__name__,
                answer,
                result.id,
                result.task.module_path,
            )
