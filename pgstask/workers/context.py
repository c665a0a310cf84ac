"""The state of one running task that its action's helpers act on.

The runner makes a ``TaskRun`` for each claimed task and hands it to the worker; the worker's
``push_progress``/``mark_*``/``log`` calls land here. Cancellation is cooperative: another
thread (listener, heartbeat, timeout watch, shutdown) calls ``cancel(reason)`` and the action
stops at its next ``push_progress`` or ``check``, where ``TaskCancelled`` is raised.
"""

from __future__ import annotations

import enum
import threading
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from typing import Any

from pgstask.errors import TaskCancelled
from pgstask.logs import LogRecord
from pgstask.progress import ProgressTracker
from pgstask.task import Task


class StopReason(enum.Enum):
    CANCELLED = "cancelled"  # a user cancelled the task (it is already status 90)
    LOST = "lost"  # the task is no longer this daemon's (rescued after a missed heartbeat)
    TIMEOUT = "timeout"  # the worker's timeout passed
    SHUTDOWN = "shutdown"  # the daemon is stopping and gives the task back


class Mark(enum.Enum):
    FINISHED = "finished"
    FAILED = "failed"


def timeout_of(settings: Mapping[str, Any]) -> float | None:
    """The worker setting ``timeout`` in seconds; None (no limit) unless a positive number."""
    value = settings.get("timeout")
    if isinstance(value, int | float) and not isinstance(value, bool) and value > 0:
        return float(value)
    return None


@dataclass(slots=True)
class TaskRun:
    """One claimed task while its action runs."""

    task: Task
    tracker: ProgressTracker
    emit_log: Callable[[LogRecord], None]
    mark: Mark | None = None
    message: str | None = None
    result: Any = None
    stop_reason: StopReason | None = None
    #: Seconds the worker allows an action (its ``timeout`` setting), None for no limit.
    timeout: float | None = None
    #: Highest resident set size, in bytes, observed for this run (see ``pgstask.memory``).
    peak_memory: int | None = None
    _stop: threading.Event = field(default_factory=threading.Event)
    _lock: threading.Lock = field(default_factory=threading.Lock)

    def cancel(self, reason: StopReason) -> None:
        """Ask the action to stop (first reason wins)."""
        if self.stop_reason is None:
            self.stop_reason = reason
        self._stop.set()

    @property
    def stopping(self) -> bool:
        return self._stop.is_set()

    def check(self) -> None:
        """Raise ``TaskCancelled`` if the action was asked to stop."""
        if self._stop.is_set():
            reason = self.stop_reason.value if self.stop_reason else "stopped"
            raise TaskCancelled(f"task {self.task.id} stopped: {reason}")

    def observe_memory(self, size: int | None) -> None:
        """Raise ``peak_memory`` to ``size`` bytes if that is higher (None: no figure)."""
        if size is None:
            return
        with self._lock:
            if self.peak_memory is None or size > self.peak_memory:
                self.peak_memory = size
