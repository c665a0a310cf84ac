"""The runs under way in a daemon: started when their task is claimed, ended with their outcome.

A run is one claim of one task, named by ``(task id, claims)`` (``RunKey``). ``RunTable`` is on
the path of every task: the producer hands it each claimed task (``start``), an action thread
(or, for an ``async def`` action, the event loop's thread) runs the action and ends the run
(``end``), and the outcome goes to the completer. A run that cannot start (``Runner.refusal``)
ends at once, on no slot. The other
parts ask it about runs: the listener cancels one (``cancel``), the heartbeat asks which runs the
daemon knows it holds (``known``) and stops those it no longer holds (``lost``), the supervisor
times them out (``abandon``) or stops them all (``stop``: a fence), and the daemon's shutdown
stops them all and gives back the rest (``stop``, ``abandon``).

Locking: one lock guards the table. ``end`` removes a run and queues its outcome in the
completer under that lock, and ``known`` reads the table and the completer's unwritten outcomes
under it too, so a run is never missing from both while its task is held: the heartbeat's
give-back check never takes a finished run for a lost claim. ``abandon`` writes a run's outcome
while its thread goes on (a thread past its timeout, or still running at the end of a shutdown);
the run stays in the table, marked, until the thread returns, and its late outcome is discarded.
One outcome per run: ``abandon`` does nothing for a run that ended or was abandoned meanwhile.
Lock order: this lock, then the completer's; a run's stop flag is set outside it.
"""

from __future__ import annotations

import logging
import threading
import time
from collections import Counter
from collections.abc import Callable
from dataclasses import dataclass, field

from pgstask.logs import LogRecord
from pgstask.runtime.completer import Completer
from pgstask.runtime.runner import Outcome, OutcomeKind, Runner
from pgstask.runtime.slots import Slots
from pgstask.task import RunKey, Task, UnreadableTask
from pgstask.workers.context import StopReason, TaskRun

_log = logging.getLogger(__name__)


@dataclass(slots=True)
class ActiveRun:
    """A run under way: its state, its deadline (``clock`` time, from the worker's ``timeout``)
    and whether the daemon already wrote its outcome."""

    run: TaskRun
    deadline: float | None
    abandoned: bool = False


@dataclass(slots=True)
class Summary:
    """What a daemon or a run-once did: outcomes counted by kind."""

    outcomes: Counter[str] = field(default_factory=Counter)

    @property
    def completed(self) -> int:
        """Runs that completed."""
        return self.outcomes[OutcomeKind.COMPLETED.value]

    @property
    def failed(self) -> int:
        """Runs that failed (retried or for good)."""
        return self.outcomes[OutcomeKind.FAILED.value]

    @property
    def total(self) -> int:
        """Runs that ended, whatever their outcome."""
        return sum(self.outcomes.values())

    @property
    def snoozed(self) -> int:
        """Runs whose action snoozed its task (pending again later, as it asked)."""
        return self.outcomes[OutcomeKind.SNOOZED.value]

    @property
    def ok(self) -> bool:
        """Every run completed, or snoozed as its action asked (the exit status of
        ``pgstask run-once``)."""
        return self.completed + self.snoozed == self.total


class RunTable:
    """The runs under way (see the module docstring)."""

    def __init__(
        self,
        *,
        runner: Runner,
        slots: Slots,
        completer: Completer,
        summary: Summary,
        on_outcome: Callable[[Outcome], None] | None = None,
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        self.runner = runner
        self.slots = slots
        self.completer = completer
        self.summary = summary
        self._on_outcome = on_outcome
        self._clock = clock
        self._runs: dict[RunKey, ActiveRun] = {}
        self._lock = threading.Lock()

    # --- the path of a task ------------------------------------------------------------------

    def start(self, task: Task) -> None:
        """Run a claimed task on an action thread, or on the event loop for an async action
        (the producer's hand-over; it claimed no more than the free slots of each kind)."""
        run = self._prepare(task)
        if run is None:
            return
        deadline = self._clock() + run.timeout if run.timeout else None
        with self._lock:
            self._runs[task.run_key] = ActiveRun(run, deadline)
        try:
            if run.asynchronous:
                self.slots.submit_async(lambda: self._run_async(run))
            else:
                self.slots.submit(lambda: self._run(run))
        except Exception:
            with self._lock:
                self._runs.pop(task.run_key, None)
            self.end(Outcome(task, OutcomeKind.GIVEN_BACK))
            raise

    def run_here(self, task: Task) -> None:
        """Run a claimed task in the calling thread (``Daemon.execute``); an async action on
        the event loop, the calling thread waiting for it."""
        run = self._prepare(task)
        if run is None:
            return
        with self._lock:
            self._runs[task.run_key] = ActiveRun(run, None)
        if run.asynchronous and self.slots.loop is not None:
            self.slots.loop.start()
            self.slots.submit_async(lambda: self._run_async(run))
            self.slots.wait_idle(None)
        else:
            self._run(run)

    def end(self, outcome: Outcome) -> None:
        """Hand an outcome to the completer and forget its run, in one step; the late outcome
        of a run the daemon abandoned is discarded."""
        key = outcome.task.run_key
        with self._lock:
            active = self._runs.pop(key, None)
            if active is not None and active.abandoned:
                _log.warning("task %s: late outcome %s discarded", key[0], outcome.kind.value)
                return
            self.summary.outcomes[outcome.kind.value] += 1
            self.completer.add(outcome)
        self._tell(outcome)

    def _prepare(self, task: Task) -> TaskRun | None:
        """The run of a claimed task; None when it cannot start (its failure is handed to the
        completer): a row pgstask cannot read, settings that break ``prepare``, a refusal."""
        if isinstance(task, UnreadableTask):
            _log.error("task %s cannot be read and fails: %s", task.id, task.problem)
            self.end(Runner.unstartable(task, f"pgstask cannot read it: {task.problem}"))
            return None
        try:
            run = self.runner.prepare(task)  # reads the worker's timeout and isolation settings
            refused = self.runner.refusal(run)
        except Exception as exc:
            _log.exception("task %s could not be prepared", task.id)
            self.end(Runner.unstartable(task, f"pgstask could not start it: {exc!r}"))
            return None
        if refused is not None:
            self.end(refused)
            return None
        return run

    def _run(self, run: TaskRun) -> None:
        try:
            outcome = self.runner.run(run)
        except BaseException as exc:  # the runner never raises: the backstop that ends the run
            _log.exception("task %s: the runner failed", run.task.id)
            outcome = self.runner.broken(
                run, f"pgstask could not end the run ({type(exc).__name__})"
            )
        self.end(outcome)

    async def _run_async(self, run: TaskRun) -> None:
        try:
            outcome = await self.runner.run_async(run)
        except GeneratorExit:  # closed without running on (a left-behind coroutine collected)
            raise
        except BaseException as exc:  # the backstop, as in ``_run``
            _log.exception("task %s: the runner failed", run.task.id)
            outcome = self.runner.broken(
                run, f"pgstask could not end the run ({type(exc).__name__})"
            )
        self.end(outcome)

    def _tell(self, outcome: Outcome) -> None:
        if self._on_outcome is None:
            return
        try:
            self._on_outcome(outcome)
        except Exception:
            _log.exception("on_outcome failed for task %s", outcome.task.id)

    # --- questions and orders from the other parts -------------------------------------------

    def known(self) -> set[RunKey]:
        """The runs this daemon knows it holds: under way (abandoned ones included: their task
        may still be held until their outcome is written) or with an outcome to write."""
        with self._lock:
            return set(self._runs) | self.completer.holding()

    def under_way(self) -> list[ActiveRun]:
        """The runs whose outcome the daemon has not written (not abandoned)."""
        with self._lock:
            return [a for a in self._runs.values() if not a.abandoned]

    def cancel(self, task_id: int, claims: int | None = None) -> None:
        """Ask run ``(task_id, claims)`` to stop, if it runs here (it was cancelled); every run
        of the task here when ``claims`` is None."""
        with self._lock:
            found = [
                a
                for (i, c), a in self._runs.items()
                if i == task_id and (claims is None or c == claims)
            ]
        for active in found:
            active.run.cancel(StopReason.CANCELLED)

    def lost(self, runs: list[RunKey]) -> None:
        """Stop the runs whose tasks this daemon no longer holds."""
        with self._lock:
            found = [self._runs[r] for r in runs if r in self._runs]
        for active in found:
            active.run.cancel(StopReason.LOST)

    def stop(self, reason: StopReason) -> list[ActiveRun]:
        """Ask every run under way to stop; returns them."""
        running = self.under_way()
        for active in running:
            active.run.cancel(reason)
        return running

    def abandon(self, active: ActiveRun, *, timed_out: bool) -> None:
        """Write the run's outcome now (failed for its timeout, or given back at the end of a
        shutdown); the thread's own outcome will be discarded."""
        task = active.run.task
        if timed_out:
            delay = self.runner.policy(active.run).delay(max(task.attempts, 1))
            final = task.attempts >= task.max_attempts
            message = f"Failed: timed out after {active.run.timeout}s and did not stop"
            outcome = Outcome(
                task,
                OutcomeKind.FAILED,
                message,
                error=message,
                retry_delay=None if final else delay,
                logs=(LogRecord.make(task.id, "error", message, attempt=task.attempts),),
                touched_progress=active.run.tracker.touched,
                peak_memory=active.run.peak_memory,
            )
        else:
            outcome = Outcome(
                task, OutcomeKind.GIVEN_BACK, touched_progress=active.run.tracker.touched
            )
        with self._lock:
            # The run may have ended meanwhile (its outcome is the one that counts), or been
            # abandoned already: one outcome per run.
            if self._runs.get(task.run_key) is not active or active.abandoned:
                return
            active.abandoned = True
            active.run.abandoned = True
            self.summary.outcomes[outcome.kind.value] += 1
            self.completer.add(outcome)
        self._tell(outcome)
