"""Process isolation: an action in a child process that can be killed (``isolation: "process"``).

Python cannot stop a thread from outside, so a hard timeout, and protection against an action
that crashes the interpreter or is killed for its memory, need the action in a process of its own.
``run_in_process`` is called by the runner in the action thread, in place of calling the action;
it starts the child (``pgstask.runtime._child``) and watches it until it ends:

    start      multiprocessing with the "forkserver" start method where there is one (Linux;
               never a plain fork of the multithreaded daemon), else "spawn". The fork server
               preloads pgstask and psycopg, so a child starts in about 10 ms once the server
               runs (the first start also starts the server: a few hundred ms).
    watch      the thread waits on the pipe and the child's sentinel, at most ``WATCH_INTERVAL``
               at a time: progress messages update the run's progress copy; on each wake-up the
               child's peak resident set size (/proc) is sampled into ``run.peak_memory``.
    stop       ``TaskRun.cancel`` (timeout, user cancel, lost task, shutdown) sets the run's
               ``SharedFlag``, which the child's ``TaskRun.check`` reads: a cooperative action
               stops at its next ``push_progress``/``check_cancelled``, as in a thread.
    kill       a child still running ``KILL_GRACE`` seconds after the first stop request
               (``SHUTDOWN_KILL_GRACE`` when the daemon is stopping, its grace period over, or has
               fenced itself off, its task about to be rescued elsewhere) is
               terminated (SIGTERM), then killed (SIGKILL) ``TERMINATE_WAIT`` seconds later.
    end        the child's report, or how it ended (killed by us; exit code or signal) becomes an
               ``Ending``; the runner turns it into the same ``Outcome`` kinds as for a thread.

The stop flag is a byte of shared memory, not a ``multiprocessing.Event``: an Event takes a
semaphore-based lock in ``is_set``, and a child killed while holding it would leave every later
``set`` of the parent blocked forever.

A child that outlives its daemon (the daemon was killed) exits on its own: it watches the
daemon's end of a pipe (see ``_child``).
"""

from __future__ import annotations

import ctypes
import json
import logging
import multiprocessing
import os
import signal
import threading
import traceback
from multiprocessing import forkserver
from multiprocessing.connection import Connection, wait
from multiprocessing.context import BaseContext
from multiprocessing.process import BaseProcess
from pathlib import Path
from typing import Any

from pgstask import memory, telemetry
from pgstask.runtime import _child
from pgstask.runtime.invocation import Ending, EndingKind
from pgstask.workers.base import BaseWorker, ClientFactory
from pgstask.workers.context import StopReason, TaskRun
from pgstask.workers.registry import class_path

_log = logging.getLogger(__name__)

#: Seconds from a stop request (a timeout, a cancel, a lost task) to the kill of the child.
KILL_GRACE = 5.0
#: The same when the daemon is stopping (its shutdown grace period has passed already).
SHUTDOWN_KILL_GRACE = 0.25
#: Seconds between SIGTERM and SIGKILL.
TERMINATE_WAIT = 0.5
#: The watching thread looks at stop requests and the child's memory this often.
WATCH_INTERVAL = 0.2
#: Modules the fork server imports once, so that children start without importing them.
PRELOAD = ("pgstask.runtime._child",)

_context: BaseContext | None = None
_context_lock = threading.Lock()


def start_context() -> BaseContext:
    """The multiprocessing context children are started with (forkserver, else spawn)."""
    global _context
    with _context_lock:
        if _context is None:
            if "forkserver" in multiprocessing.get_all_start_methods():
                _context = multiprocessing.get_context("forkserver")
                # set_forkserver_preload replaces the list (["__main__"] by default) and counts
                # only before the server starts: keep what the application asked for.
                current = list(getattr(forkserver._forkserver, "_preload_modules", ["__main__"]))
                wanted = current + [m for m in PRELOAD if m not in current]
                _context.set_forkserver_preload(wanted)
            else:
                _context = multiprocessing.get_context("spawn")
        return _context


class SharedFlag:
    """A stop flag in shared memory: set by the daemon, read by the child without locks."""

    def __init__(self) -> None:
        self._value: Any = start_context().RawValue(ctypes.c_bool, False)

    def set(self) -> None:
        """Ask the child to stop."""
        self._value.value = True

    def is_set(self) -> bool:
        """A stop was asked."""
        return bool(self._value.value)


def run_in_process(
    run: TaskRun,
    worker: BaseWorker,
    *,
    dsn: str,
    make_client: ClientFactory,
    storage: Path,
    progress_interval: float,
) -> Ending:
    """Run the action of ``run.task`` in a child process and wait for it; never raises
    ``Exception``. The child's mark, message and result are set on ``run``."""
    tracker = run.tracker
    spec = _child.ChildSpec(
        class_path=class_path(type(worker)),
        settings=dict(worker.settings),
        task=run.task,
        dsn=dsn,
        make_client=make_client,
        storage=storage,
        progress_interval=progress_interval,
        timeout=run.timeout,
        elapsed=max(0.0, tracker.clock() - tracker.started),
        environ=dict(os.environ),
        trace_context=telemetry.current_carrier(),
    )
    reader, writer = start_context().Pipe(duplex=False)
    try:
        try:
            child = _Child(spec, writer, run)
            child.start()
        finally:
            writer.close()  # the child holds the only writing end: EOF when it ends
    except Exception as exc:
        reader.close()
        return Ending(
            EndingKind.RAISED,
            f"could not start a process for the action: {type(exc).__name__}: {exc}",
            "".join(traceback.format_exception(exc)),
        )
    try:
        return _watch(run, child, reader)
    except Exception as exc:  # e.g. a message that does not unpickle: the child is killed
        _log.exception("task %s: lost track of its process %s", run.task.id, child.pid)
        return Ending(
            EndingKind.RAISED,
            f"lost track of the action's process: {type(exc).__name__}: {exc}",
            "".join(traceback.format_exception(exc)),
        )
    finally:
        child.reap()
        reader.close()


def _watch(run: TaskRun, child: _Child, reader: Connection) -> Ending:
    report: _child.Report | None = None
    while report is None:
        kill_at = _kill_at(run)
        timeout = WATCH_INTERVAL
        if kill_at is not None:
            timeout = max(0.0, min(timeout, kill_at - run.clock()))
        ready = wait([reader, child.sentinel], timeout)
        run.observe_memory(memory.peak_of(child.pid))
        if ready:
            report, ended = _receive(run, reader)
            if report is None and (ended or child.sentinel in ready):
                if child.join(TERMINATE_WAIT) is None:  # it closed the pipe and lives on
                    child.kill()
                return Ending(EndingKind.EXITED, describe_exit(child.exitcode))
        elif kill_at is not None and run.clock() >= kill_at:
            child.kill()
            report, _ = _receive(run, reader)  # it may have finished in the meantime
            if report is None:
                return Ending(EndingKind.KILLED, describe_exit(child.exitcode))
    run.observe_memory(report.peak_memory)
    run.mark, run.message = report.mark, report.message
    run.result = json.loads(report.result_json)
    if report.progress is not None:
        run.tracker.mirror(report.progress)
    # The child exits right after its report; one that lingers (a thread the action left
    # running) is given the kill grace, then killed. Its report stands.
    child.join(KILL_GRACE)
    return report.ending


def _receive(run: TaskRun, reader: Connection) -> tuple[_child.Report | None, bool]:
    """Read what the child sent; (its report or None, whether the pipe has ended)."""
    while True:
        try:
            if not reader.poll():
                return None, False
            kind, body = reader.recv()
        except (EOFError, OSError):
            return None, True
        if kind == "done":
            return body, False
        if kind == "progress":
            run.tracker.mirror(body)


def _kill_at(run: TaskRun) -> float | None:
    requested = run.stop_requested_at
    if requested is None:
        return None
    urgent = run.stop_reason in (StopReason.SHUTDOWN, StopReason.FENCED)
    grace = SHUTDOWN_KILL_GRACE if urgent else KILL_GRACE
    return requested + grace


# multiprocessing reads a child's exit status when anything polls it: its owner, and also
# Process.start() and active_children() in any other thread, which poll every child. Two polls
# at once can read a fork server's status message twice (the second sees EOF and records 255),
# or reap a spawned child twice. Every poll of these children happens under this lock.
_poll_lock = threading.Lock()


class _Child:
    """One child process: started, waited for, killed and released under ``_poll_lock``."""

    def __init__(self, spec: _child.ChildSpec, writer: Connection, run: TaskRun) -> None:
        self._process: BaseProcess = start_context().Process(  # type: ignore[attr-defined]
            target=_child.main,
            args=(spec, writer, run.stop_flag),
            name=f"pgstask-task-{run.task.id}",
        )
        self.pid = 0
        self.sentinel = -1

    def start(self) -> None:
        with _poll_lock:
            self._process.start()
        assert self._process.pid is not None
        self.pid, self.sentinel = self._process.pid, self._process.sentinel

    @property
    def exitcode(self) -> int | None:
        with _poll_lock:
            return self._process.exitcode

    def join(self, timeout: float) -> int | None:
        """Wait up to ``timeout`` seconds for the child to end; its exit code, or None."""
        wait([self.sentinel], timeout)
        return self.exitcode

    def kill(self) -> None:
        """SIGTERM, then SIGKILL if the child is still there ``TERMINATE_WAIT`` seconds later."""
        if self.exitcode is not None:
            return
        self._process.terminate()
        if self.join(TERMINATE_WAIT) is None:
            self._process.kill()
            self.join(KILL_GRACE)

    def reap(self) -> None:
        """Make sure the child is gone and release what multiprocessing holds for it."""
        try:
            if self.exitcode is None:
                self.kill()
            if self.exitcode is None:
                _log.error("the process %s of a task did not end after SIGKILL", self.pid)
                return
            with _poll_lock:
                self._process.close()
        except Exception:
            _log.exception("could not release the process %s of a task", self.pid)


def describe_exit(code: int | None) -> str:
    """``exited with code 3`` / ``was killed by signal SIGKILL``, for task messages."""
    if code is None:
        return "the action's process did not end"
    if code < 0:
        try:
            name = signal.Signals(-code).name
        except ValueError:
            name = str(-code)
        return f"the action's process was killed by signal {name} without reporting an outcome"
    return f"the action's process exited with code {code} without reporting an outcome"
