"""The hook caller: runs the workers' ``on_completed`` and ``on_failed`` hooks in the daemon,
after the outcome they are told of is stored.

The completer tells it the outcomes of each pass once they are committed
(``Completer(on_written=)``). ``add`` keeps those a hook wants (a completion of a worker that
defines ``on_completed``, a failure of one that defines ``on_failed``) in a bounded queue and
returns at once: neither the completer nor an action slot ever waits for a hook. ``step``, in the
caller's own thread, reads the queued tasks back (one statement on the daemon's pool) and calls
their hooks one at a time, in the order their outcomes were stored.

Which hook, and with what::

    completed                         on_completed(task, result): the row as stored (status 80)
    failed, final (the row: 100)      on_failed(task, error): the row, and its failure message
    failed, retried (the row: 10)     nothing: the task runs again
    snoozed, given back, dropped      nothing: the run did not end the task (a cancelled or
                                      rescued task's outcome is discarded: no hook either)

The row read back is used when it is still this run's (same ``claims``); if it cannot be read
(the database away, the task deleted or claimed again meanwhile) the hook gets the task as the
daemon knew it, with the outcome's status, message and result, and a failure counts as final
when the runner made it so.

An exception in a hook is logged on the daemon's logger (with the task id) and as a warning
record on the task; the task's outcome stays as stored. When the queue is full (hooks slower
than the tasks they follow) a new outcome's hook is dropped, with a warning on both. At
shutdown ``finish(grace)`` lets the queued hooks run until ``grace`` ends, then drops the rest,
with a warning on both; a hook under way is not interrupted (its thread is left to end alone).
"""

from __future__ import annotations

import collections
import dataclasses
import logging
import threading
import time
import traceback
from collections.abc import Iterable, Mapping
from pathlib import Path
from typing import Any

from psycopg_pool import ConnectionPool

from pgstask import logs, queries
from pgstask.db import Conn
from pgstask.logs import LogRecord
from pgstask.runtime.runner import COMPLETED_MESSAGE, Outcome, OutcomeKind
from pgstask.runtime.service import Clock, Service
from pgstask.task import Status, Task
from pgstask.workers.base import BaseWorker

_log = logging.getLogger(__name__)

#: The hook each outcome kind may call.
_HOOK_OF = {OutcomeKind.COMPLETED: "on_completed", OutcomeKind.FAILED: "on_failed"}


class HookCaller(Service):
    """Calls the hooks of stored outcomes in a thread of its own (see the module docstring)."""

    name = "hooks"

    def __init__(
        self,
        *,
        workers: Mapping[str, BaseWorker],
        pool: ConnectionPool[Conn],
        storage: Path,
        capacity: int = 10_000,
        batch: int = 100,
        interval: float = 1.0,
        clock: Clock = time.monotonic,
    ) -> None:
        """``workers``: the daemon's worker instances (those that define no hook are left
        out). ``capacity``: the most outcomes queued; ``batch``: the most read back at once."""
        super().__init__(interval=interval, clock=clock)
        if capacity < 1 or batch < 1:
            raise ValueError(f"hooks: capacity and batch must be positive, not {capacity}, {batch}")
        self.pool = pool
        self.storage = storage
        self.capacity = capacity
        self.batch = batch
        self._hooks = {i: w.defined_hooks() for i, w in workers.items() if w.defined_hooks()}
        self._workers = {i: workers[i] for i in self._hooks}
        self._queue: collections.deque[Outcome] = collections.deque()
        self._notes: list[LogRecord] = []  # warnings about dropped hooks, for the next step
        self._idle = threading.Condition()
        self._busy = False
        self._dropping = False

    @classmethod
    def for_workers(cls, workers: Mapping[str, BaseWorker], **kwargs: Any) -> HookCaller | None:
        """A hook caller for ``workers``, or None when none of them defines a hook (then the
        daemon has no hook thread and the completer tells no one)."""
        if not any(w.defined_hooks() for w in workers.values()):
            return None
        return cls(workers=workers, **kwargs)

    def add(self, outcomes: Iterable[Outcome]) -> None:
        """Outcomes just stored (the completer's ``on_written``): queue those a hook wants.
        Never waits; drops what does not fit, with a warning."""
        wanted = [
            o for o in outcomes if _HOOK_OF.get(o.kind) in self._hooks.get(o.task.identifier, ())
        ]
        if not wanted:
            return
        why = (
            "the daemon stopped" if self._dropping else f"the hook queue is full ({self.capacity})"
        )
        with self._idle:
            room = 0 if self._dropping else self.capacity - len(self._queue)
            self._queue.extend(wanted[:room])
            dropped = wanted[room:]
            self._notes.extend(_dropped(dropped, why))
        if dropped:
            tasks = ", ".join(str(o.task.id) for o in dropped)
            _log.warning("hooks: %s; dropped the hooks of task(s) %s", why, tasks)
        self.wake()

    @property
    def pending(self) -> int:
        """Outcomes whose hooks have not been called yet."""
        with self._idle:
            return len(self._queue)

    def next_delay(self, result: object) -> float:
        """At once while outcomes are queued."""
        return 0.0 if self.pending else self.interval

    def step(self) -> int:
        """Call the hooks of up to ``batch`` queued outcomes; returns how many were called."""
        with self._idle:
            taken = [self._queue.popleft() for _ in range(min(self.batch, len(self._queue)))]
            notes, self._notes = self._notes, []
            self._busy = bool(taken)
        try:
            rows = self._read(taken)
            called = 0
            for n, outcome in enumerate(taken):
                if self._dropping:
                    notes.extend(_dropped(taken[n:], "the daemon stopped"))
                    tasks = ", ".join(str(o.task.id) for o in taken[n:])
                    _log.warning(
                        "hooks: the daemon stopped; dropped the hooks of task(s) %s", tasks
                    )
                    break
                note = self._call(outcome, rows.get(outcome.task.id))
                called += 1
                if note is not None:
                    notes.append(note)
            self._write(notes)
            return called
        finally:
            with self._idle:
                self._busy = False
                self._idle.notify_all()

    def finish(self, grace: float) -> int:
        """At shutdown, after the completer's last pass: let the queued hooks run for up to
        ``grace`` seconds, then drop the rest (with a warning) and stop. Returns how many were
        dropped."""
        deadline = self.clock() + grace
        while not self.alive and self.pending and self.clock() < deadline:
            self.step()  # never started (or stopped): call them here
        with self._idle:
            while (self._queue or self._busy) and self.alive:
                left = deadline - self.clock()
                if left <= 0:
                    break
                self._idle.wait(min(left, 0.2))
            self._dropping = True
            dropped, self._queue = list(self._queue), collections.deque()
            notes, self._notes = self._notes, []
        notes.extend(_dropped(dropped, "the daemon stopped"))
        if dropped:
            _log.warning(
                "hooks: the daemon stopped; dropped the hooks of task(s) %s",
                ", ".join(str(o.task.id) for o in dropped),
            )
        self._write(notes)
        self.stop(timeout=0.5)
        if self.alive:
            _log.warning("hooks: a hook is still running; it is left to end alone")
        return len(dropped)

    def _read(self, outcomes: list[Outcome]) -> dict[int, Task]:
        """The tasks of ``outcomes`` as stored now, by id; none if the database cannot say."""
        if not outcomes:
            return {}
        try:
            with self.pool.connection(timeout=5.0) as conn:
                found = queries.task_get_many(conn, ids=[o.task.id for o in outcomes])
        except Exception:
            _log.warning(
                "hooks: could not read the tasks back; using the daemon's copies", exc_info=True
            )
            return {}
        return {t.id: t for t in found}

    def _call(self, outcome: Outcome, row: Task | None) -> LogRecord | None:
        """Call the hook of ``outcome``, if it has one to call; a warning record if it raised."""
        task = _as_stored(outcome, row)
        if task is None:
            return None
        name = _HOOK_OF[outcome.kind]
        worker = self._workers[task.identifier]
        try:
            if outcome.kind is OutcomeKind.COMPLETED:
                worker.on_completed(task, task.result)
            else:
                worker.on_failed(task, task.message or "Failed")
        except BaseException as exc:  # SystemExit too, as from an action: the thread goes on
            _log.exception("task %s: %s of worker %r raised", task.id, name, task.identifier)
            return LogRecord.make(
                task.id,
                "warning",
                f"{name} hook raised {type(exc).__name__}: {exc} (the task stays "
                f"{task.status_text})",
                hook=name,
                traceback="".join(traceback.format_exception(exc)),
            )
        return None

    def _write(self, records: list[LogRecord]) -> None:
        """The warning records on their tasks: rows and log lines; the lines alone if the
        database cannot take the rows."""
        if not records:
            return
        try:
            with self.pool.connection(timeout=5.0) as conn:
                logs.write(conn, self.storage, records)
        except Exception:
            _log.warning("hooks: %d warning record(s) only in the log files", len(records))
            try:
                logs.append_files(self.storage, records)
            except OSError:
                _log.warning("hooks: could not write the log files either", exc_info=True)


def _as_stored(outcome: Outcome, row: Task | None) -> Task | None:
    """The task as ``outcome`` stored it, for its hook; None when no hook is due (a failure
    that is retried)."""
    task = outcome.task
    this_run = row is not None and row.claims == task.claims
    if outcome.kind is OutcomeKind.COMPLETED:
        if this_run and row is not None and row.status == Status.COMPLETED:
            return row
        message = outcome.message or COMPLETED_MESSAGE
        status, result = Status.COMPLETED, outcome.result
        return dataclasses.replace(
            task, status=status, message=message, result=result, progress=100
        )
    if this_run and row is not None and row.status in (Status.PENDING, Status.FAILED):
        return row if row.status == Status.FAILED else None
    if outcome.retry_delay is not None:
        return None
    message = outcome.message or "Failed"
    return dataclasses.replace(
        task, status=Status.FAILED, message=message, last_error=outcome.error
    )


def _dropped(outcomes: Iterable[Outcome], why: str) -> list[LogRecord]:
    """Warnings on the tasks whose hook is dropped; none for a failure the runner retries (its
    hook would most likely not have been called)."""
    return [
        LogRecord.make(o.task.id, "warning", f"{_HOOK_OF[o.kind]} hook not called: {why}")
        for o in outcomes
        if o.kind is OutcomeKind.COMPLETED or o.retry_delay is None
    ]
