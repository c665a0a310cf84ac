"""One call of an action, and how it ended.

The runner calls actions in its own thread, and the child process of a process-isolated action
calls them in the same way, through ``invoke``. What the action marked, its result and message
stay on the ``TaskRun``; ``Ending`` says how the call ended. The runner turns both into an
``Outcome``.
"""

from __future__ import annotations

import enum
import traceback
from dataclasses import dataclass

from pgstask.db import json_text
from pgstask.errors import TaskStopped
from pgstask.workers.base import BaseWorker
from pgstask.workers.context import Mark, TaskRun


class EndingKind(enum.Enum):
    """The ways a call of an action can end (the runner makes an outcome of each)."""

    RETURNED = "returned"  # the action returned (marked or not)
    STOPPED = "stopped"  # it let TaskStopped propagate, or returned while asked to stop
    RAISED = "raised"  # it raised any other exception (also SystemExit, KeyboardInterrupt)
    INVALID_RESULT = "invalid_result"  # it returned, but its result is not JSON-serialisable
    UNAVAILABLE = "unavailable"  # (process) the worker class could not be loaded in the child
    KILLED = "killed"  # (process) the runner killed the child after a stop request
    EXITED = "exited"  # (process) the child ended without reporting (exit code, signal)


@dataclass(frozen=True, slots=True)
class Ending:
    """How one call of an action ended; ``error`` and ``trace`` when it did not return."""

    kind: EndingKind
    error: str | None = None
    trace: str | None = None


def invoke(worker: BaseWorker, method_name: str, run: TaskRun) -> Ending:
    """Call ``method_name`` of ``worker`` for ``run.task``; never raises ``Exception``."""
    task = run.task
    method = getattr(worker, method_name)
    worker._runs[task.id] = run
    try:
        method(task, dict(task.meta))
        if run.stopping:  # the action returned without noticing the request to stop
            run.check()
    except TaskStopped:
        return Ending(EndingKind.STOPPED)
    except BaseException as exc:  # KeyboardInterrupt, GeneratorExit … too: never stuck
        return Ending(
            EndingKind.RAISED,
            f"{type(exc).__name__}: {exc}",
            "".join(traceback.format_exception(exc)),
        )
    finally:
        worker._runs.pop(task.id, None)
    if run.mark is not Mark.FAILED and run.result is not None:
        # It goes in the completion batch, where one value jsonb refuses would fail them all.
        try:
            json_text(run.result)
        except ValueError as exc:
            return Ending(EndingKind.INVALID_RESULT, f"the result is not JSON-serialisable: {exc}")
    return Ending(EndingKind.RETURNED)
