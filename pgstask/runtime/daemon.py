"""The daemon: builds the services, runs claimed tasks, and stops without losing any.

Life of a daemon::

    setup      migrate check → register its workers in s_workers (new ones active unless
               PGSTASK_AUTO_ACTIVATE=0) → insert its s_daemons row
    run        Producer claims ≤ free slots → Executor threads run the Runner → Completer writes
               Listener wakes the Producer (new tasks) and stops cancelled actions
               Heartbeat keeps the row fresh, stops lost runs, gives back what the daemon
               holds without knowing it, reloads worker settings
               Rescuer and Cleaner run their passes (one daemon at a time)
               the calling thread supervises: worker timeouts, fencing, stop requests
    stop       first request: stop claiming, give running actions ``shutdown_grace`` seconds,
               then ask the rest to stop and give their tasks back (pending, attempt not
               counted); flush outcomes; delete the s_daemons row.
               second request: the same without the grace period.

Runs: every claim of a task is a run of its own, named by ``(task id, claims)`` (``RunKey``),
kept in a ``RunTable`` (``runtime/runs.py``) from the claim to its outcome. The producer hands
claimed tasks to it, an executor thread runs each and hands the outcome to the completer through
it; the daemon builds and supervises, and is on no task's path. Cancellation, lost runs, timeouts
and every write match the run, never only the task id: a late outcome of an earlier run (a retry
claimed again on this daemon, a cancel then a retry) cannot complete a later one.

Fencing: when the last successful heartbeat is older than ``fence_after`` (``stale_after`` less
a margin, see ``fence_after()``), other daemons may soon rescue this one's tasks. The daemon then
claims nothing and asks every running action to stop (``StopReason.FENCED``; a child process is
killed after ``SHUTDOWN_KILL_GRACE``), so that an action does not run on beside its re-run
elsewhere. A stopped action's task is given back, the attempt not counted, if the daemon still
holds it when the database answers (else the outcome is discarded): a fence can also come from a
heartbeat thread starved of CPU. The first successful heartbeat (which registers the daemon again
if it was declared dead) lifts the fence.

``run_once`` is ``pgstask run-once``: the same setup, heartbeat and completer, no listener; one
rescuer and one cleaner pass (cron may be the only runner); then it claims until nothing is due,
waits for the actions, and reports what happened.

Timeouts: at the worker's ``timeout`` the action is asked to stop (it stops at its next
``push_progress``/``check_cancelled``). If it has not stopped ``KILL_GRACE`` seconds later:

- in a thread (``isolation: "thread"``, the default), where Python allows nothing else, its task
  is failed for retry at once and the thread's eventual result is discarded (the thread keeps its
  slot until it returns);
- in a child process (``isolation: "process"``), the runner kills the process and fails the task
  for retry itself (``pgstask.runtime.isolation``); nothing is abandoned.

The supervising loop also samples the daemon's resident set size every 0.2 s into the
``peak_memory`` of each action that runs in a thread (a child process measures its own).
"""

from __future__ import annotations

import logging
import os
import socket
import threading
import time
import uuid
from collections.abc import Callable, Mapping
from typing import Any

from psycopg_pool import ConnectionPool

from pgstask import memory, migrate, queries
from pgstask._version import __version__
from pgstask.db import Conn, Dedicated, make_pool
from pgstask.errors import SchemaError, TaskNotFoundError, TaskStateError, WorkerNotFoundError
from pgstask.runtime.cleaner import Cleaner
from pgstask.runtime.completer import Completer
from pgstask.runtime.executor import Executor
from pgstask.runtime.heartbeat import Heartbeat
from pgstask.runtime.isolation import KILL_GRACE, SHUTDOWN_KILL_GRACE, TERMINATE_WAIT
from pgstask.runtime.listener import Listener
from pgstask.runtime.producer import Producer
from pgstask.runtime.reporter import Reporter
from pgstask.runtime.rescuer import Rescuer
from pgstask.runtime.runner import Outcome, RetryPolicy, Runner, describe_outcomes
from pgstask.runtime.runs import RunTable, Summary
from pgstask.settings import Settings
from pgstask.workers.base import BaseWorker, ClientFactory
from pgstask.workers.context import Isolation, StopReason
from pgstask.workers.registry import register_workers

_log = logging.getLogger(__name__)


def fence_after(heartbeat_interval: float, stale_after: float) -> float:
    """Seconds without a successful heartbeat after which a daemon fences itself: ``stale_after``
    less a margin to stop its actions before the earliest rescue (the larger of one heartbeat
    interval and a quarter of the gap between the two settings), never earlier than half-way
    between them. 23.75 s with the defaults (5 s, 30 s)."""
    gap = stale_after - heartbeat_interval
    return max(heartbeat_interval + gap / 2, stale_after - max(heartbeat_interval, gap / 4))


class Daemon:
    """One daemon process's worth of machinery (also usable in-process, e.g. in tests)."""

    def __init__(
        self,
        settings: Settings,
        *,
        dsn: str,
        workers: Mapping[str, type[BaseWorker]],
        make_client: ClientFactory,
        concurrency: int | None = None,
        on_outcome: Callable[[Outcome], None] | None = None,
    ) -> None:
        """``make_client`` makes the client the workers enqueue and store files through (the
        ``Client`` class; the runtime does not import the client, which sits above it), here and
        in child processes. ``on_outcome`` is told every outcome the daemon records
        (``run-once`` prints a line per task with it); it runs in an action thread and must not
        raise."""
        self.settings = settings
        self.dsn = dsn
        self.id = uuid.uuid4()
        self.concurrency = concurrency or settings.concurrency
        self.worker_classes = dict(workers)
        self.workers: dict[str, BaseWorker] = {}
        self.summary = Summary()
        self._on_outcome = on_outcome
        self._stop_requests = 0
        self._rss: int | None = memory.resident()  # refreshed every 0.2 s by _supervise
        self._supervised = False  # run() and run_once() call _supervise every 0.2 s
        #: Seconds without a successful heartbeat after which the daemon fences itself.
        self.fence_after = fence_after(settings.heartbeat_interval, settings.stale_after)
        self.fenced = False
        self._fenced_at = 0.0
        self._stop_lock = threading.RLock()  # reentrant: request_stop may run in a signal handler
        self.make_client = make_client
        # For the actions' create_task and store_result_file; its pool is made on first use.
        self.client = make_client(dsn, settings=settings)
        self._stop_event = threading.Event()
        self._pool: ConnectionPool[Conn] | None = None
        self._claim_conn: Dedicated | None = None
        self._complete_conn: Dedicated | None = None
        self.executor: Executor | None = None
        self.producer: Producer | None = None
        self.completer: Completer | None = None
        self.heartbeat: Heartbeat | None = None
        self.listener: Listener | None = None
        self.rescuer: Rescuer | None = None
        self.cleaner: Cleaner | None = None
        self.runner: Runner | None = None
        self.runs: RunTable | None = None

    # --- setup -------------------------------------------------------------------------------

    @property
    def pool(self) -> ConnectionPool[Conn]:
        assert self._pool is not None, "the daemon is not set up"
        return self._pool

    @property
    def identifiers(self) -> list[str]:
        return sorted(self.worker_classes)

    def setup(self) -> None:
        """Check the schema, register workers and this daemon, build the services."""
        self._check_schema()
        self._register_workers_and_daemon()
        self._build_task_path()
        self._build_loops()

    def _check_schema(self) -> None:
        head, current = migrate.head_revision(), migrate.current_revision(self.dsn)
        if current != head:
            raise SchemaError(
                f"the database schema is at revision {current or 'none'}, this pgstask needs "
                f"{head}: run `pgstask migrate`"
            )

    def _register_workers_and_daemon(self) -> None:
        s = self.settings
        self._pool = make_pool(
            self.dsn, max_size=min(self.concurrency, 16) + 4, name="pgstask-daemon"
        )
        with self.pool.connection() as conn:
            register_workers(conn, self.worker_classes.values(), active=s.auto_activate)
            states = queries.worker_states(conn, identifiers=self.identifiers)
            self._register(conn)
        stored = {r["identifier"]: r["settings"] for r in states}
        for ident, cls in self.worker_classes.items():
            self.workers[ident] = cls(stored.get(ident), client=self.client, storage=s.storage)

    def _build_task_path(self) -> None:
        """Executor, completer, runner, run table and producer: the way of every task."""
        s = self.settings
        self.executor = Executor(self.concurrency, on_free=self._slot_freed)
        # The claim and the completion each run every few milliseconds under load: each on a
        # connection of its own (one round trip a statement), the pool serves everything else.
        self._claim_conn = Dedicated(self.dsn, name="pgstask-producer")
        self._complete_conn = Dedicated(self.dsn, name="pgstask-completer")
        self.completer = Completer(
            db=self._complete_conn, daemon_id=self.id, storage=s.storage, on_flushed=self._flushed
        )
        self.runner = Runner(
            workers=self.workers,
            storage=s.storage,
            retry=RetryPolicy(s.retry_base_delay, s.retry_max_delay),
            reporter=Reporter(
                completer=self.completer, pool=self.pool, daemon_id=self.id, storage=s.storage
            ),
            # The supervising loop's latest reading: no system call on the path of each task
            # (one there lets the producer claim with half the slots free, halving throughput).
            memory_sample=self._memory_sample,
            dsn=self.dsn,
            make_client=self.make_client,
        )
        self.runs = RunTable(
            runner=self.runner,
            executor=self.executor,
            completer=self.completer,
            summary=self.summary,
            on_outcome=self._on_outcome,
        )
        self.producer = Producer(
            db=self._claim_conn,
            daemon_id=self.id,
            identifiers=lambda: self.identifiers,
            free_slots=self._free_slots,
            submit=self.runs.start,
            poll_interval=s.poll_interval,
        )

    def _build_loops(self) -> None:
        """Heartbeat, rescuer, cleaner and listener: the loops beside the task path."""
        assert self.runs is not None and self.producer is not None
        s = self.settings
        self.heartbeat = Heartbeat(
            pool=self.pool,
            daemon_id=self.id,
            register=self._register,
            known=self.runs.known,
            claim_lock=self.producer.claim_lock,
            identifiers=self.identifiers,
            on_lost=self.runs.lost,
            on_workers=self._reload_workers,
            interval=s.heartbeat_interval,
        )
        self.rescuer = Rescuer(
            pool=self.pool,
            storage=s.storage,
            stale_after=s.stale_after,
            base_delay=s.retry_base_delay,
            max_delay=s.retry_max_delay,
            interval=max(0.2, min(s.stale_after / 2, 30.0)),
        )
        self.cleaner = Cleaner(
            pool=self.pool,
            storage=s.storage,
            task_retention_days=s.task_retention_days,
            log_retention_days=s.log_retention_days,
        )
        if not s.poll_only:
            self.listener = Listener(
                dsn=self.dsn,
                on_tasks=self.producer.wake,
                on_cancel=self.runs.cancel,
                on_workers=self.heartbeat.wake,
            )

    def _register(self, conn: Conn) -> None:
        queries.daemon_register(
            conn,
            id=self.id,
            hostname=socket.gethostname(),
            pid=os.getpid(),
            concurrency=self.concurrency,
            identifiers=self.identifiers,
            version=__version__,
        )

    # --- running tasks -----------------------------------------------------------------------

    def _slot_freed(self) -> None:
        if self.producer is not None:
            self.producer.wake()

    def _flushed(self, outcomes: list[Outcome]) -> None:
        if self.producer is not None and any(o.retry_delay is not None for o in outcomes):
            self.producer.wake()  # a retry may be due before the next poll

    def _free_slots(self) -> int:
        if self.fenced or self.executor is None:
            return 0
        return self.executor.free

    def _reload_workers(self, states: list[dict[str, Any]]) -> None:
        for state in states:
            worker = self.workers.get(state["identifier"])
            if worker is not None:
                worker.settings = {**type(worker).settings, **(state["settings"] or {})}

    def _memory_sample(self) -> int | None:
        # execute() has no supervising loop: it reads the figure itself.
        return self._rss if self._supervised else memory.resident()

    def _supervise(self) -> None:
        """Every 0.2 s: fencing, worker timeouts, and the memory of the actions that run in
        threads."""
        assert self.runs is not None
        now = time.monotonic()
        self._fence(now)
        active = self.runs.under_way()
        in_threads = [a for a in active if a.run.isolation is Isolation.THREAD]
        size = self._rss = memory.resident()
        self._supervised = True
        if in_threads:
            for a in in_threads:
                a.run.observe_memory(size)
        for a in active:
            if a.deadline is None or now < a.deadline:
                continue
            a.run.cancel(StopReason.TIMEOUT)
            # A child process is killed by its runner thread; a thread cannot be.
            if a.run.isolation is Isolation.THREAD and now >= a.deadline + KILL_GRACE:
                self.runs.abandon(a, timed_out=True)

    def _fence(self, now: float) -> None:
        """Fence this daemon off while its heartbeat is too old (see the module docstring)."""
        heartbeat = self.heartbeat
        if heartbeat is None or not heartbeat.alive:
            return
        silent = now - heartbeat.last_beat
        if silent <= self.fence_after:
            if self.fenced:
                self.fenced = False
                _log.warning("daemon %s: heartbeat back; claiming again", self.id)
                if self.producer is not None:
                    self.producer.wake()
            return
        if not self.fenced:
            self.fenced = True
            self._fenced_at = now
            _log.error(
                "daemon %s: no heartbeat for %.1fs (fence after %.1fs, stale after %.1fs): "
                "stopping its actions and claiming nothing until the database answers",
                self.id,
                silent,
                self.fence_after,
                self.settings.stale_after,
            )
        if self.runs is not None:
            self.runs.stop(StopReason.FENCED)

    def _waiting_out_fence(self) -> bool:
        """``run-once``, fenced: nothing was claimed because of the fence, not because nothing
        is due. It waits for the database up to ``stale_after``, then ends (cron runs it
        again)."""
        return self.fenced and time.monotonic() - self._fenced_at < self.settings.stale_after

    # --- the main loops ----------------------------------------------------------------------

    def request_stop(self) -> None:
        """First call: graceful stop; second call: stop now (no grace period)."""
        with self._stop_lock:
            self._stop_requests += 1
        self._stop_event.set()

    def run(self) -> Summary:
        """Run until ``request_stop``; then stop gracefully. Call from the main thread."""
        self.setup()
        assert self.producer and self.completer and self.heartbeat and self.executor
        assert self.rescuer and self.cleaner
        self.executor.start()
        services = [self.completer, self.heartbeat, self.rescuer, self.cleaner, self.producer]
        if self.listener is not None:
            services.insert(0, self.listener)
        for service in services:
            service.start()
        _log.info(
            "daemon %s running %d worker(s) with %d slot(s)",
            self.id,
            len(self.workers),
            self.concurrency,
        )
        try:
            while not self._stop_event.wait(0.2):
                self._supervise()
        finally:
            self._shutdown()
        return self.summary

    def run_once(self, *, batch_size: int | None = None, max_tasks: int | None = None) -> Summary:
        """Process what is due now (at most ``max_tasks``), wait for it, and return."""
        self.setup()
        assert self.producer and self.completer and self.heartbeat and self.executor
        self.producer.batch_size = batch_size
        self.executor.start()
        self.completer.start()
        self.heartbeat.start()
        # Where cron's run-once is the only runner, it is also the rescuer and the cleaner:
        # tasks of a run killed mid-way are due again before this run claims.
        self._housekeeping()
        claimed = 0
        try:
            while not self._stop_event.is_set():
                if max_tasks is not None:
                    left = max_tasks - claimed
                    if left <= 0:
                        break
                    self.producer.batch_size = min(batch_size or left, left)
                got = self.producer.run_once()
                claimed += got
                if got == 0:
                    if self.executor.busy == 0 and not self._waiting_out_fence():
                        break
                    self.executor.wait_idle(0.1)  # wait for a slot (or the end)
                self._supervise()
            while not self.executor.wait_idle(0.2):
                if self._stop_event.is_set():
                    break
                self._supervise()
        finally:
            self._shutdown()
        return self.summary

    def _housekeeping(self) -> None:
        """One pass of the rescuer and the cleaner; a failure is logged, never fatal."""
        for service in (self.rescuer, self.cleaner):
            if service is None:
                continue
            try:
                service.run_once()
            except Exception:
                _log.warning("pgstask %s pass failed", service.name, exc_info=True)

    def execute(self, task_id: int) -> Summary:
        """Claim one pending task by id (whatever its ``start_at``) and run it here."""
        self.setup()
        assert self.runner is not None and self.completer is not None
        self.completer.start()  # writes the action's progress and log records as it runs
        try:
            with self.pool.connection() as conn:
                current = queries.task_get(conn, id=task_id)
                if current is None:
                    raise TaskNotFoundError(task_id)
                if current.identifier not in self.workers:
                    raise WorkerNotFoundError(current.identifier)
                task = queries.task_claim_by_id(conn, daemon_id=self.id, id=task_id)
            if task is None:
                raise TaskStateError(
                    f"task {task_id} is {current.status_text}; only pending tasks can be executed"
                )
            assert self.runs is not None
            self.runs.run_here(task)
        finally:
            self._shutdown()
        return self.summary

    def _shutdown(self) -> None:
        """Stop claiming, let actions finish (grace), give back the rest, flush, deregister."""
        for service in (self.producer, self.rescuer, self.cleaner):
            if service is not None:
                service.stop()
        executor = self.executor
        if executor is not None:
            grace = 0.0 if self._stop_requests > 1 else self.settings.shutdown_grace
            deadline = time.monotonic() + grace
            while not executor.wait_idle(0.2):
                self._supervise()
                if time.monotonic() >= deadline or self._stop_requests > 1:
                    break
            if executor.busy and self.runs is not None:
                left = self.runs.stop(StopReason.SHUTDOWN)
                executor.wait_idle(0.5)  # cooperative actions give their task back themselves
                if any(a.run.isolation is Isolation.PROCESS for a in left):
                    # their runner threads kill the child processes that did not stop
                    executor.wait_idle(SHUTDOWN_KILL_GRACE + TERMINATE_WAIT + 1.0)
                for active in self.runs.under_way():
                    self.runs.abandon(active, timed_out=False)
            executor.stop()
        if self.completer is not None:
            if not self.completer.flush(timeout=10.0):
                _log.error(
                    "could not write %d outcome(s); their tasks will be rescued by another daemon",
                    self.completer.pending,
                )
            self.completer.stop()
        for dedicated, user in (
            (self._claim_conn, self.producer),
            (self._complete_conn, self.completer),
        ):
            if dedicated is None:
                continue
            if user is not None and user.alive:
                # Its thread is still stuck in a statement (its stop timed out): closing the
                # connection under that thread is not safe, so it is left to the thread.
                _log.warning("pgstask %s did not stop; its connection is left open", user.name)
            else:
                dedicated.close()
        for last in (self.heartbeat, self.listener):
            if last is not None:
                last.stop()
        if self._pool is not None:
            try:
                with self.pool.connection(timeout=5.0) as conn:
                    queries.daemon_deregister(conn, id=self.id)
            except Exception:
                _log.warning("could not remove daemon row %s", self.id, exc_info=True)
            self._pool.close()
        self.client.close()
        _log.info("daemon %s stopped: %s", self.id, describe_outcomes(self.summary.outcomes))
