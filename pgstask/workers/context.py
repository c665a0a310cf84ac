"""The state of one running task that its action's helpers act on.

The runner makes a ``TaskRun`` for each claimed task and hands it to the worker; the worker's
``push_progress``/``mark_*``/``log`` calls land here. Cancellation is cooperative: another
thread (listener, heartbeat, timeout watch, shutdown) calls ``cancel(reason)`` and the action
stops at its next ``push_progress`` or ``check``, where ``TaskStopped`` is raised. For an action
that runs in a child process (``Isolation.PROCESS``) the stop flag is shared memory that the child's
own ``TaskRun`` reads, so the same calls stop it there.

An ``async def`` action (``asynchronous``) runs on the daemon's event loop: its stop flag is a
``LoopFlag``, whose ``set`` also cancels the action's asyncio task on that loop, so the action
sees ``asyncio.CancelledError`` at its next ``await``; its ``check`` raises ``CancelledError``
too, not ``TaskStopped``. The helpers return ``DONE``, which a sync action ignores and an async
one may ``await`` (a point where a pending cancellation is delivered).
"""

from __future__ import annotations

import asyncio
import contextlib
import enum
import threading
import time
from collections.abc import Callable, Generator, Mapping
from dataclasses import dataclass, field
from typing import Any, Protocol

from pgstask.errors import TaskStopped
from pgstask.logs import LogRecord
from pgstask.progress import ProgressTracker
from pgstask.retry import RetryPolicy
from pgstask.task import Task


class StopReason(enum.Enum):
    """Why a run was asked to stop (the first reason given wins)."""

    CANCELLED = "cancelled"  # a user cancelled the task (it is already status 90)
    LOST = "lost"  # the task is no longer this daemon's (rescued after a missed heartbeat)
    TIMEOUT = "timeout"  # the worker's timeout passed
    SHUTDOWN = "shutdown"  # the daemon is stopping and gives the task back
    #: The daemon lost the database for too long: the task may be rescued and run elsewhere,
    #: so the action stops before that happens (its attempt fails for retry, if still held).
    FENCED = "fenced"


class Mark(enum.Enum):
    """What the action said of its own outcome (``mark_finished``/``mark_failed``)."""

    FINISHED = "finished"
    FAILED = "failed"


class Isolation(enum.Enum):
    """Where an action runs: the worker setting ``isolation``."""

    THREAD = "thread"  # a thread of the daemon (the default)
    PROCESS = "process"  # a child process that can be killed

    @classmethod
    def of(cls, identifier: str, settings: Mapping[str, Any]) -> Isolation:
        """The isolation a worker's settings ask for; ``ValueError`` for an unknown value."""
        value = settings.get("isolation")
        if value is None:
            return cls.THREAD
        for member in cls:
            if value == member.value:
                return member
        raise ValueError(
            f"worker {identifier!r} has an invalid setting isolation={value!r}; allowed values: "
            '"thread" (the default) or "process"'
        )


def timeout_of(settings: Mapping[str, Any]) -> float | None:
    """The worker setting ``timeout`` in seconds; None (no limit) unless a positive number."""
    value = settings.get("timeout")
    if isinstance(value, int | float) and not isinstance(value, bool) and value > 0:
        return float(value)
    return None


class StopFlag(Protocol):
    """What ``TaskRun`` needs of its stop flag (``Flag`` or a shared one)."""

    def set(self) -> None:
        """Ask the action to stop (``TaskRun.cancel``); it stays set."""
        ...

    def is_set(self) -> bool:
        """Whether the action was asked to stop (read at each check)."""
        ...


class Flag:
    """The stop flag of an action that runs in a thread: nothing waits on it (the action polls
    it at ``push_progress``/``check``), so a plain attribute does, without the lock and
    condition of a ``threading.Event`` for every task."""

    __slots__ = ("_set",)

    def __init__(self) -> None:
        self._set = False

    def set(self) -> None:
        """Ask the action to stop."""
        self._set = True

    def is_set(self) -> bool:
        """Whether the action was asked to stop."""
        return self._set


class LoopFlag:
    """The stop flag of an async action: ``set`` also cancels the asyncio task the action runs
    in (``attach``), once, through its loop's ``call_soon_threadsafe``, so the action sees
    ``asyncio.CancelledError`` at its next ``await``. Set before the task is attached, it
    cancels nothing: the run checks the flag before it calls the action."""

    __slots__ = ("_lock", "_set", "_task")

    def __init__(self) -> None:
        self._set = False
        self._task: asyncio.Task[Any] | None = None
        self._lock = threading.Lock()

    def set(self) -> None:
        """Ask the action to stop; the first call cancels its asyncio task."""
        with self._lock:
            if self._set:
                return
            self._set = True
            task = self._task
        if task is not None:
            # A closed loop raises RuntimeError: nothing runs there any more.
            with contextlib.suppress(RuntimeError):
                task.get_loop().call_soon_threadsafe(task.cancel)

    def is_set(self) -> bool:
        """Whether the action was asked to stop."""
        return self._set

    def attach(self, task: asyncio.Task[Any]) -> None:
        """The asyncio task the action runs in (called in it, on its loop)."""
        with self._lock:
            self._task = task


class Done:
    """What the helpers of an action return (``push_progress``, ``log``, ``mark_*``,
    ``check_cancelled``): their work is done when they return. A sync action ignores it; an
    async action may ``await`` it, which yields to the event loop once, like
    ``asyncio.sleep(0)``: a cancellation on its way is delivered there."""

    __slots__ = ()

    def __await__(self) -> Generator[None, None, None]:
        """Yield to the event loop once."""
        yield


#: The one ``Done``.
DONE = Done()


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
    #: ``clock()`` time of the first stop request (process isolation kills from there).
    stop_requested_at: float | None = None
    #: Seconds the worker allows an action (its ``timeout`` setting), None for no limit.
    timeout: float | None = None
    isolation: Isolation = Isolation.THREAD
    #: The worker's retry rules (its settings over the global ones), None for the runner's.
    retry: RetryPolicy | None = None
    #: Why the worker's settings do not allow this run (the task fails for good without running).
    setting_error: str | None = None
    #: Highest resident set size, in bytes, observed for this run (see ``pgstask.memory``).
    peak_memory: int | None = None
    #: The daemon wrote this run's outcome itself (a thread past its timeout): whatever the
    #: action does from now on is discarded, its final progress snapshot included.
    abandoned: bool = False
    #: Writes a phase (30 preparing / 50 running) to the task row as a compare-and-set; False
    #: when the task is no longer this run's.
    set_status: Callable[[int], bool] = field(default=lambda status: True)
    #: The daemon's clock (``time.monotonic`` unless a test gives another).
    clock: Callable[[], float] = time.monotonic
    #: The action is ``async def``: it runs on the daemon's event loop, and a stop reaches it
    #: as ``asyncio.CancelledError`` (its stop flag is a ``LoopFlag``).
    asynchronous: bool = False
    _stop: StopFlag = field(default_factory=Flag)
    _lock: threading.Lock = field(default_factory=threading.Lock)

    def cancel(self, reason: StopReason) -> None:
        """Ask the action to stop (first reason wins)."""
        with self._lock:
            if self.stop_reason is None:
                self.stop_reason = reason
                self.stop_requested_at = self.clock()
        self._stop.set()

    @property
    def stop_flag(self) -> StopFlag:
        """The flag ``cancel`` sets (shared with the child process of a process-isolated run)."""
        return self._stop

    @property
    def stopping(self) -> bool:
        """The run was asked to stop (its next check raises ``TaskStopped``)."""
        return self._stop.is_set()

    def check(self) -> None:
        """Raise ``TaskStopped`` if the action was asked to stop, with the reason when this
        ``TaskRun`` knows it (a child process's sees only the shared flag);
        ``asyncio.CancelledError`` for an async action."""
        if self._stop.is_set():
            reason = self.stop_reason.value if self.stop_reason else None
            text = f"task {self.task.id} stopped: {reason or 'stopped'}"
            if self.asynchronous:
                raise asyncio.CancelledError(text)
            raise TaskStopped(text, reason=reason)

    def observe_memory(self, size: int | None) -> None:
        """Raise ``peak_memory`` to ``size`` bytes if that is higher (None: no figure)."""
        if size is None:
            return
        with self._lock:
            if self.peak_memory is None or size > self.peak_memory:
                self.peak_memory = size
