"""The runner: executes one claimed task and says what became of it.

The daemon, ``run-once`` and ``Client.execute`` share it. ``prepare`` reads the worker's settings
that concern pgstask (``timeout``, ``isolation``, the retry settings of ``pgstask.retry``) once,
when the task is claimed, and whether its action is ``async def`` (``TaskRun.asynchronous``).
``refusal`` is the outcome of a run that cannot start (an unknown worker or action, an invalid
setting, an async action with ``isolation: "process"``): it needs no slot. ``run`` resolves the
action, makes its options (a copy of the task's data, or the instance of the options model the
action declares: ``pgstask.workers.options``) and calls it with them, in the calling thread or,
with ``isolation: "process"``, in a child process (``pgstask.runtime.isolation``); ``run_async``
awaits an async action on the daemon's event loop. Both turn how the call ended into an
``Outcome``, which the completer writes (batched, compare-and-set). They never raise: an unknown
action, an invalid setting, data the action's options model refuses, an exception, a result
that is not JSON, a cancellation, a timeout, a shutdown and a child process that died each have
their own outcome, the same for a sync and an async action.

What the action raised decides, with the worker's ``RetryPolicy``: ``Snooze`` makes the task
pending again later without counting the attempt (unless it snoozed ``max_snoozes`` times
already: then it fails for good); ``Retry`` is a failed attempt retried after the delay it gives;
any other exception a failed attempt, retried after the backoff unless ``fail_on`` names its
class or ``retry_on`` does not.

Every outcome carries the run's ``peak_memory`` (bytes): in a thread, the highest resident set
size of the whole daemon process seen while the action ran (``memory_sample`` at its start and
end: the latest reading of the supervisor's ``Gauge`` in a daemon); in a child process, that
process's own peak.
"""

from __future__ import annotations

import logging
import time
from collections.abc import Callable, Iterable, Mapping
from pathlib import Path
from typing import Any, Protocol

from pgstask import memory, telemetry
from pgstask.db import storable
from pgstask.errors import ConfigurationError, InvalidOptionsError, UnknownActionError
from pgstask.logs import LogRecord
from pgstask.progress import ProgressState, ProgressTracker
from pgstask.retry import RetryPolicy
from pgstask.runtime import isolation
from pgstask.runtime.invocation import Ending, EndingKind, invoke, invoke_async
from pgstask.runtime.outcomes import OUTCOME_WORDS as OUTCOME_WORDS
from pgstask.runtime.outcomes import Outcome as Outcome
from pgstask.runtime.outcomes import OutcomeKind as OutcomeKind
from pgstask.runtime.outcomes import describe_outcomes as describe_outcomes
from pgstask.runtime.outcomes import raised, tell
from pgstask.task import Status, Task
from pgstask.workers.actions import action_methods
from pgstask.workers.base import BaseWorker, ClientFactory
from pgstask.workers.context import (
    Flag,
    Isolation,
    LoopFlag,
    Mark,
    StopFlag,
    StopReason,
    TaskRun,
    timeout_of,
)
from pgstask.workers.options import model_of, options_for

_log = logging.getLogger(__name__)

COMPLETED_MESSAGE = "Task completed successfully"
ASYNC_PROCESS_REFUSED = (
    'has async actions and the setting isolation="process"; async actions run on the '
    "daemon's event loop: remove the setting, or define the actions with `def`"
)
FENCED_MESSAGE = "Given back: its daemon lost contact with the database and stopped it"


def check_worker_settings(workers: Iterable[type[BaseWorker]], retry: RetryPolicy) -> None:
    """Refuse, with a ``ConfigurationError`` naming the worker and the setting, a worker class
    whose default ``settings`` hold an invalid retry or isolation setting, or ask for
    ``isolation: "process"`` while it has async actions (a daemon's start). An invalid value
    stored in ``s_workers.settings`` fails the worker's tasks instead (``refusal``). An action
    whose options model cannot be resolved or checked (``options.model_of``) is refused the same
    way."""
    for cls in workers:
        for method_name in sorted(action_methods(cls).values()):
            model_of(cls, method_name)
        where = f"in the class attribute {cls.__module__}.{cls.__qualname__}.settings"
        try:
            retry.for_worker(cls.identifier, cls.settings)
            isolated = Isolation.of(cls.identifier, cls.settings) is Isolation.PROCESS
        except ValueError as exc:
            raise ConfigurationError(f"{exc} ({where})") from None
        if isolated and cls.async_actions():
            raise ConfigurationError(f"worker {cls.identifier!r} {ASYNC_PROCESS_REFUSED} ({where})")


class Reports(Protocol):
    """Where a run sends what its action reports (``runtime.reporter.Reporter`` in a daemon)."""

    def progress(self, state: ProgressState) -> None:
        """Store the latest progress of a running task (its row; never waits on the database)."""

    def log(self, record: LogRecord) -> None:
        """Store a log record of a running task."""

    def set_status(self, task: Task, status: int) -> bool:
        """Set the phase of a running task (30/50) if the run still holds it."""


class Runner:
    """Runs claimed tasks on the given worker instances."""

    def __init__(
        self,
        *,
        workers: Mapping[str, BaseWorker],
        storage: Path,
        retry: RetryPolicy,
        reporter: Reports,
        memory_sample: Callable[[], int | None] = memory.resident,
        dsn: str | None = None,
        make_client: ClientFactory | None = None,
        progress_interval: float = 0.25,
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        """``retry`` holds the global retry settings, under each worker's own; ``reporter``
        takes what actions report while they run; ``memory_sample`` reads the daemon's
        resident set size (the supervisor's ``Gauge``); ``dsn`` and ``make_client`` are for
        the child processes of process-isolated actions."""
        self.workers = workers
        self.clock = clock
        self.storage = storage
        self.retry = retry
        self.dsn = dsn
        self.make_client = make_client
        self.reporter = reporter
        self._memory_sample = memory_sample
        self._progress_interval = progress_interval

    def prepare(self, task: Task) -> TaskRun:
        """The run state of a claimed task (registered with the daemon before it starts)."""
        state = ProgressState(task.id, task.identifier, task.action)
        reporter = self.reporter
        tracker = ProgressTracker(
            state,
            reporter.progress,
            self.storage,
            interval=self._progress_interval,
            clock=self.clock,
        )
        worker = self.workers.get(task.identifier)
        settings = worker.settings if worker is not None else {}  # one version, if reloaded
        where, retry, refused = Isolation.THREAD, self.retry, None
        try:
            where = Isolation.of(task.identifier, settings)
            retry = self.retry.for_worker(task.identifier, settings)
        except ValueError as exc:
            refused = str(exc)
        asynchronous = worker is not None and worker.is_async_action(task.action)
        stop: StopFlag = Flag()
        if where is Isolation.PROCESS and not asynchronous:
            stop = isolation.SharedFlag()
        elif asynchronous:
            stop = LoopFlag()
        return TaskRun(
            task=task,
            tracker=tracker,
            emit_log=reporter.log,
            set_status=lambda status: reporter.set_status(task, status),
            timeout=timeout_of(settings),
            isolation=where,
            retry=retry,
            setting_error=refused,
            clock=self.clock,
            asynchronous=asynchronous,
            _stop=stop,
        )

    def policy(self, run: TaskRun) -> RetryPolicy:
        """The retry rules of ``run`` (its worker's, read when it was claimed)."""
        return run.retry or self.retry

    @staticmethod
    def unstartable(task: Task, error: str) -> Outcome:
        """The final failure of a claimed task that cannot start at all (nothing ran)."""
        message = storable(f"Failed: {error}")
        record = LogRecord.make(task.id, "error", message, attempt=task.attempts)
        return Outcome(task, OutcomeKind.FAILED, message, error=message, logs=(record,))

    def broken(self, run: TaskRun, error: str) -> Outcome:
        """The outcome of a run the runner itself could not end (a bug: it never raises): a
        failure for retry, or the task given back if even that cannot be made."""
        try:
            return self._failure(run, error, final=False)
        except Exception:
            return Outcome(run.task, OutcomeKind.GIVEN_BACK, touched_progress=run.tracker.touched)

    def refusal(self, run: TaskRun) -> Outcome | None:
        """The final failure of a run that cannot start (nothing runs, no slot is needed);
        None when it can."""
        task = run.task
        worker = self.workers.get(task.identifier)
        if worker is None:  # the claim only selects identifiers this daemon has
            return self._failure(run, f"no worker {task.identifier!r} on this daemon", final=True)
        if run.setting_error is not None:
            return self._failure(run, run.setting_error, final=True)
        try:
            worker.resolve_action(task.action)
        except UnknownActionError as exc:
            return self._failure(run, str(exc), final=True)
        if run.asynchronous and run.isolation is Isolation.PROCESS:
            error = f"worker {task.identifier!r} {ASYNC_PROCESS_REFUSED}"
            return self._failure(run, error, final=True)
        return None

    def _options(self, run: TaskRun, worker: BaseWorker, method_name: str) -> Any:
        """The options the action is called with; an ``Outcome`` (a final failure) when its
        options model refuses the task's data: before any child process or coroutine starts."""
        try:
            return options_for(type(worker), method_name, run.task.meta)
        except InvalidOptionsError as exc:
            return self._failure(run, exc.mismatch, final=True)
        except ConfigurationError as exc:
            return self._failure(run, str(exc), final=True)

    def run(self, run: TaskRun) -> Outcome:
        """Execute the action of ``run.task`` (not an async one) in its ``process`` span
        (``pgstask.telemetry``); never raises."""
        with telemetry.processing(run.task) as seen:
            return tell(seen, run, self._run(run, seen))

    def _run(self, run: TaskRun, seen: telemetry.Processing) -> Outcome:
        refused = self.refusal(run)
        if refused is not None:
            return refused
        worker = self.workers[run.task.identifier]
        method_name = worker.resolve_action(run.task.action)
        if run.asynchronous:
            return self._failure(run, "an async action needs the daemon's event loop", final=True)
        options = self._options(run, worker, method_name)
        if isinstance(options, Outcome):
            return options
        if run.isolation is Isolation.PROCESS:
            if self.dsn is None or self.make_client is None:
                return self._failure(
                    run, "process isolation needs the daemon's DSN and client factory", final=True
                )
            ending = isolation.run_in_process(
                run,
                worker,
                dsn=self.dsn,
                make_client=self.make_client,
                storage=self.storage,
                progress_interval=self._progress_interval,
            )
        else:
            run.observe_memory(self._memory_sample())
            ending = invoke(worker, method_name, run, options)
            run.observe_memory(self._memory_sample())
        raised(seen, ending)
        return self._outcome(run, ending)

    async def run_async(self, run: TaskRun) -> Outcome:
        """Await the ``async def`` action of ``run.task`` on the running event loop, in its
        ``process`` span; never raises (a stop request arrives as ``CancelledError`` and ends it
        as for a thread)."""
        with telemetry.processing(run.task) as seen:
            return tell(seen, run, await self._run_async(run, seen))

    async def _run_async(self, run: TaskRun, seen: telemetry.Processing) -> Outcome:
        refused = self.refusal(run)
        if refused is not None:
            return refused
        worker = self.workers[run.task.identifier]
        method_name = worker.resolve_action(run.task.action)
        options = self._options(run, worker, method_name)
        if isinstance(options, Outcome):
            return options
        run.observe_memory(self._memory_sample())
        ending = await invoke_async(worker, method_name, run, options)
        run.observe_memory(self._memory_sample())
        raised(seen, ending)
        return self._outcome(run, ending)

    def _outcome(self, run: TaskRun, ending: Ending) -> Outcome:
        kind = ending.kind
        if kind in (EndingKind.UNAVAILABLE, EndingKind.INVALID_RESULT):
            return self._failure(run, ending.error or kind.value, final=True)
        if kind in (EndingKind.STOPPED, EndingKind.KILLED) or (
            kind is EndingKind.EXITED and run.stop_reason
        ):
            return self._stopped(run, killed=kind is EndingKind.KILLED)
        if kind is EndingKind.SNOOZED:
            return self._snoozed(run, ending)
        if kind is EndingKind.RETRY:
            error = ending.error or "Retry"
            return self._failure(run, error, final=False, trace=ending.trace, delay=ending.delay)
        if kind in (EndingKind.RAISED, EndingKind.EXITED):
            # Exceptions are matched by name; a process that died raised nothing: retried.
            why = self.policy(run).not_retried(ending.names) if ending.names else None
            error = ending.error or kind.value
            return self._failure(run, error, final=why is not None, trace=ending.trace, why=why)
        if run.mark is Mark.FAILED:
            return self._failure(run, run.message or "Failed", final=True, explicit=True)
        message = storable(run.message or COMPLETED_MESSAGE)  # any object: its str()
        self._final_snapshot(run, Status.COMPLETED, message, run.result)
        return Outcome(
            run.task,
            OutcomeKind.COMPLETED,
            message,
            run.result,
            touched_progress=run.tracker.touched,
            peak_memory=run.peak_memory,
        )

    def _stopped(self, run: TaskRun, *, killed: bool) -> Outcome:
        reason = run.stop_reason
        if reason is StopReason.TIMEOUT:
            error = f"timed out after {run.timeout}s"
            if killed:
                error += "; its process was killed"
            return self._failure(run, error, final=False)
        if reason is StopReason.FENCED:
            # Given back, the attempt not counted, if the task is still this run's when the
            # database answers again: a fence may also come from a starved heartbeat.
            return Outcome(
                run.task,
                OutcomeKind.GIVEN_BACK,
                FENCED_MESSAGE,
                touched_progress=run.tracker.touched,
                peak_memory=run.peak_memory,
            )
        kind = OutcomeKind.GIVEN_BACK if reason is StopReason.SHUTDOWN else OutcomeKind.DROPPED
        if reason is StopReason.CANCELLED and run.tracker.touched:
            self._final_snapshot(run, Status.CANCELLED, "Cancelled", None)
        return Outcome(
            run.task, kind, touched_progress=run.tracker.touched, peak_memory=run.peak_memory
        )

    def _snoozed(self, run: TaskRun, ending: Ending) -> Outcome:
        task, limit = run.task, self.policy(run).max_snoozes
        if limit is not None and task.snoozes >= limit:
            error = (
                f"Snooze refused: the task snoozed {task.snoozes} times, the most worker "
                f"{task.identifier!r} allows (max_snoozes={limit})"
            )
            return self._failure(run, error, final=True)
        delay = ending.delay or 0.0
        record = LogRecord.make(
            task.id,
            "info",
            f"Snoozed for {delay:g}s",
            attempt=task.attempts,
            snoozes=task.snoozes + 1,
        )
        self._final_snapshot(run, Status.PENDING, f"Snoozed for {delay:g}s", None)
        return Outcome(
            task,
            OutcomeKind.SNOOZED,
            storable(ending.message) if ending.message else None,
            snooze_delay=delay,
            logs=(record,),
            touched_progress=run.tracker.touched,
            peak_memory=run.peak_memory,
        )

    def _failure(
        self,
        run: TaskRun,
        error: str,
        *,
        final: bool,
        trace: str | None = None,
        explicit: bool = False,
        delay: float | None = None,
        why: str | None = None,
    ) -> Outcome:
        """A failed run: retried after ``delay`` (None: the worker's backoff) unless ``final``
        or no attempts are left; ``why`` it is final, for the log."""
        task = run.task
        asked = delay is not None
        final = final or task.attempts >= task.max_attempts
        if final:
            delay = None
        elif delay is None:
            delay = self.policy(run).delay(max(task.attempts, 1))
        error, trace = storable(error), storable(trace) if trace else trace
        message = error if explicit else f"Failed: {error}"
        context: dict[str, Any] = {"attempt": task.attempts, "max_attempts": task.max_attempts}
        if trace:
            context["traceback"] = trace
        records = [LogRecord.make(task.id, "error", message, **context)]
        if why is not None:
            records.append(LogRecord.make(task.id, "warning", f"Not retried: {why}"))
        if delay is not None:
            text = f"Retrying in {delay:.2f}s" + (", as the action asked" if asked else "")
            records.append(
                LogRecord.make(
                    task.id, "warning", text, attempt=task.attempts, retry_delay=round(delay, 3)
                )
            )
        status = Status.FAILED if final else Status.PENDING
        self._final_snapshot(run, status, message, None)
        return Outcome(
            task,
            OutcomeKind.FAILED,
            message,
            error=trace or error,
            retry_delay=delay,
            logs=tuple(records),
            touched_progress=run.tracker.touched,
            peak_memory=run.peak_memory,
        )

    def _final_snapshot(self, run: TaskRun, status: int, message: str, result: Any) -> None:
        if not run.tracker.touched or run.abandoned:
            return
        try:
            run.tracker.finish(status, message, result)
        except OSError:
            _log.warning(
                "could not write the final snapshot of task %s", run.task.id, exc_info=True
            )
