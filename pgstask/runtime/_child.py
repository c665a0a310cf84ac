"""The child process of a process-isolated action (worker setting ``isolation: "process"``).

``pgstask.runtime.isolation`` starts it through multiprocessing with a ``ChildSpec``, the sending
end of a pipe and the run's shared stop flag. The child imports the worker class by its path
(``module:QualName``, as in ``s_workers.class``), instantiates it with the worker's merged
settings, and calls the action through ``invoke``, exactly as the runner does in a thread:
``push_progress`` (same ``ProgressTracker`` coalescing), ``log``, ``mark_finished``/``mark_failed``,
``create_task`` and ``check_cancelled`` all work. Progress rows, snapshots and log records are
written here, through one connection of the child's own to the daemon's database. The task row is
not: the parent's completer writes the outcome, as for any other task.

What goes back to the parent, on the pipe:

- ``("progress", fields)`` after every progress write, so the parent holds the latest state for
  the final snapshot and knows that there is a progress row to delete;
- ``("done", Report)`` once, when the action has ended: how (its ``Ending``: plain data, also for
  an exception, a ``Snooze`` or a ``Retry``), the mark, the message, the result as JSON text, the
  final progress state and this process's peak resident set size.

The child runs with the daemon's environment of the moment it was started (a fork server's own
environment is that of its start). It exits at once when the daemon goes away: a thread waits on
the parent's sentinel, which the kernel closes when the daemon dies.
"""

from __future__ import annotations

import contextlib
import dataclasses
import json
import logging
import os
import signal
import threading
from collections.abc import Callable
from dataclasses import dataclass
from multiprocessing import parent_process
from multiprocessing.connection import Connection, wait
from pathlib import Path
from typing import Any

from pgstask import db, logs, memory, progress, queries, telemetry
from pgstask.errors import ConfigurationError, InvalidOptionsError
from pgstask.logs import LogRecord
from pgstask.progress import ProgressState, ProgressTracker
from pgstask.runtime.invocation import Ending, EndingKind, invoke
from pgstask.task import Task
from pgstask.workers.base import ClientFactory, WorkerClient
from pgstask.workers.context import Isolation, Mark, StopFlag, TaskRun
from pgstask.workers.options import options_for
from pgstask.workers.registry import import_class

_log = logging.getLogger("pgstask.runtime.child")

#: Exit status of a child whose daemon went away.
EXIT_PARENT_GONE = 75


@dataclass(frozen=True, slots=True)
class ChildSpec:
    """Everything the child needs, pickled once when it starts."""

    class_path: str
    settings: dict[str, Any]
    task: Task
    dsn: str
    #: Makes the worker's client (``Client``: pickled by reference, imported in the child).
    make_client: ClientFactory
    storage: Path
    progress_interval: float
    timeout: float | None
    #: Seconds since the task was claimed (the ETA counts from the claim, as in a thread).
    elapsed: float
    environ: dict[str, str]
    #: The run's ``process`` span as a carrier (JSON text; None: telemetry off): the child makes
    #: it current while the action runs, so log records and the action's own spans join it.
    trace_context: str | None = None


@dataclass(frozen=True, slots=True)
class Report:
    """How the action ended in the child."""

    ending: Ending
    mark: Mark | None = None
    message: str | None = None
    result_json: str = "null"
    progress: dict[str, Any] | None = None
    peak_memory: int | None = None


class _Database:
    """The child's one connection, opened on first use and again after a failure."""

    def __init__(self, dsn: str) -> None:
        self.dsn = dsn
        self._conn: db.Conn | None = None

    def use(self, write: Callable[[db.Conn], None]) -> None:
        if self._conn is None or self._conn.closed:
            self._conn = db.connect(self.dsn, autocommit=True, name="pgstask-child")
        try:
            write(self._conn)
        except Exception:
            self.close()
            raise

    def close(self) -> None:
        if self._conn is not None:
            try:
                self._conn.close()
            finally:
                self._conn = None


def main(spec: ChildSpec, pipe: Connection, stop: StopFlag) -> None:
    """The child's entry point (``multiprocessing.Process`` target)."""
    # Ctrl-C in a terminal reaches the whole process group: the daemon decides what stops.
    signal.signal(signal.SIGINT, signal.SIG_IGN)
    _exit_with_parent()
    os.environ.clear()
    os.environ.update(spec.environ)
    database = _Database(spec.dsn)
    client = spec.make_client(spec.dsn)  # for create_task/store_result_file; pool made on use
    try:
        report = _run(spec, pipe, stop, database, client)
    finally:
        client.close()
        database.close()
    _send(pipe, ("done", report))
    pipe.close()


def _run(
    spec: ChildSpec, pipe: Connection, stop: StopFlag, database: _Database, client: WorkerClient
) -> Report:
    task = spec.task
    try:
        worker = import_class(spec.class_path)(spec.settings, client=client, storage=spec.storage)
        method_name = worker.resolve_action(task.action)
    except Exception as exc:
        return Report(
            Ending(
                EndingKind.UNAVAILABLE,
                f"cannot load worker class {spec.class_path} in a child process (isolation "
                f'"process" needs a class importable by that path): {type(exc).__name__}: {exc}',
            )
        )

    try:
        options = options_for(type(worker), method_name, task.meta)
    except InvalidOptionsError as exc:
        return Report(Ending(EndingKind.UNAVAILABLE, exc.mismatch))
    except ConfigurationError as exc:
        return Report(Ending(EndingKind.UNAVAILABLE, str(exc)))

    def write_progress(state: ProgressState) -> None:
        try:
            database.use(lambda conn: progress.upsert(conn, [state]))
        except Exception:
            # Progress is advisory: the action goes on, the snapshot file still has it.
            _log.warning("could not write progress of task %s", state.task_id, exc_info=True)
        _send(pipe, ("progress", dataclasses.asdict(state)))

    def emit_log(record: LogRecord) -> None:
        try:
            database.use(lambda conn: logs.write(conn, spec.storage, [record]))
        except Exception:
            _log.warning("could not store a log record of task %s", task.id, exc_info=True)
            logs.append_files(spec.storage, [record])

    def set_status(status: int) -> bool:
        done: list[bool] = []
        database.use(
            lambda conn: done.append(
                queries.task_set_status(
                    conn,
                    id=task.id,
                    status=status,
                    claims=task.claims,
                    daemon_id=task.daemon_id,
                )
            )
        )
        return done[0]

    state = ProgressState(task.id, task.identifier, task.action)
    tracker = ProgressTracker(state, write_progress, spec.storage, interval=spec.progress_interval)
    tracker.started -= spec.elapsed
    run = TaskRun(
        task=task,
        tracker=tracker,
        emit_log=emit_log,
        timeout=spec.timeout,
        isolation=Isolation.PROCESS,
        set_status=set_status,
        _stop=stop,
    )
    with telemetry.continued(spec.trace_context):
        ending = invoke(worker, method_name, run, options)
    returned = ending.kind is EndingKind.RETURNED and run.mark is not Mark.FAILED  # result checked
    return Report(
        ending,
        run.mark,
        run.message,
        json.dumps(run.result) if returned else "null",
        dataclasses.asdict(tracker.state) if tracker.touched else None,
        memory.peak(),
    )


def _send(pipe: Connection, message: tuple[str, Any]) -> None:
    with contextlib.suppress(OSError):  # the daemon is gone; the watcher ends this process
        pipe.send(message)


def _exit_with_parent() -> None:
    parent = parent_process()
    if parent is None:
        return
    sentinel = parent.sentinel

    def watch() -> None:
        wait([sentinel])
        os._exit(EXIT_PARENT_GONE)

    threading.Thread(target=watch, name="pgstask-child-watch", daemon=True).start()
