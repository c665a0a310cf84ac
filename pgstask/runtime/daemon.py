"""The daemon: assembles the parts that run tasks, starts them, and stops them losing nothing.

Life of a daemon::

    setup      the workers' retry settings checked → migrate check → register its workers in
               s_workers (new ones active unless PGSTASK_AUTO_ACTIVATE=0) → insert its
               s_daemons row → build the parts
    run        start the parts; the calling thread waits for a stop request
    stop       first request: stop claiming, give running actions ``shutdown_grace`` seconds,
               then ask the rest to stop and give their tasks back (pending, attempt not
               counted); flush outcomes; give their hooks ``shutdown_grace`` seconds;
               delete the s_daemons row.
               second request: the same without the grace period.

The parts, in the order a task meets them (each is given the next at construction)::

    Listener ─wake→ Producer ─claimed tasks→ RunTable ─job→ Slots (a thread) ─→ Runner
      (NOTIFY)      (claim ≤ free slots,      (runs by                              │ worker action
                     fence open)               (id, claims))                         │ progress/logs
                                                    ▲                                ▼ → Reporter
                                                    └──── outcome ── RunTable.end ─────→ Completer
    beside it:  Heartbeat (s_daemons row, lost runs, give-back, worker settings)
                Supervisor (fence, timeouts, memory)   Rescuer, Cleaner (one daemon at a time)
                HookCaller (workers' hooks; the completer tells it what it stored)

An ``async def`` action's job runs on the slots' event loop (``runtime/loop.py``), not on a
thread; the producer claims for the free slots of each kind.

The producer's ``wakeup`` event is made first, so that the parts built before it (the slots
when one frees, the completer when it writes a retry) can wake it; everything else is wired
by giving a part the object it talks to. The daemon is on no task's path.

Runs: every claim of a task is a run of its own, named by ``(task id, claims)`` (``RunKey``),
kept in the ``RunTable`` (``runtime/runs.py``) from the claim to its outcome. Cancellation, lost
runs, timeouts and every write match the run, never only the task id: a late outcome of an
earlier run (a retry claimed again on this daemon, a cancel then a retry) cannot complete a later
one. Fencing, timeouts and memory samples are the supervisor's (``runtime/supervisor.py``).

``run_once`` is ``pgstask run-once``: the same setup, heartbeat, supervisor and completer, no
listener; one rescuer and one cleaner pass (cron may be the only runner); then it claims until
nothing is due, waits for the actions, and reports what happened. ``execute`` is
``pgstask execute``: one given pending task, run in the calling thread.
"""

from __future__ import annotations

import functools
import logging
import threading
import time
import uuid
from collections.abc import Callable, Mapping

from psycopg_pool import ConnectionPool

from pgstask import migrate, queries, schedules
from pgstask.db import Conn, Dedicated, make_pool
from pgstask.errors import SchemaError
from pgstask.memory import Gauge
from pgstask.retry import RetryPolicy
from pgstask.runtime.cleaner import Cleaner
from pgstask.runtime.completer import Completer
from pgstask.runtime.heartbeat import DaemonRow, Heartbeat
from pgstask.runtime.hooks import HookCaller
from pgstask.runtime.isolation import SHUTDOWN_KILL_GRACE, TERMINATE_WAIT
from pgstask.runtime.listener import Listener
from pgstask.runtime.producer import Producer, claim_by_id
from pgstask.runtime.reporter import Reporter
from pgstask.runtime.rescuer import Rescuer
from pgstask.runtime.runner import Outcome, Runner, check_worker_settings, describe_outcomes
from pgstask.runtime.runs import RunTable, Summary
from pgstask.runtime.scheduler import Scheduler
from pgstask.runtime.service import Clock, Service
from pgstask.runtime.slots import Slots
from pgstask.runtime.supervisor import Fence, Supervisor, fence_after
from pgstask.settings import Settings
from pgstask.workers.base import BaseWorker, ClientFactory
from pgstask.workers.context import Isolation, StopReason
from pgstask.workers.registry import register_workers

_log = logging.getLogger(__name__)

__all__ = ["Daemon", "fence_after"]


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
        async_concurrency: int | None = None,
        on_outcome: Callable[[Outcome], None] | None = None,
        clock: Clock = time.monotonic,
    ) -> None:
        """``make_client`` makes the client the workers enqueue and store files through (the
        ``Client`` class; the runtime does not import the client, which sits above it), here and
        in child processes. ``on_outcome`` is told every outcome the daemon records
        (``run-once`` prints a line per task with it); it runs in an action thread and must not
        raise. ``clock`` is given to every part (tests may drive time). ``concurrency`` and
        ``async_concurrency`` override the settings' slots of sync and of async actions."""
        self.settings = settings
        self.dsn = dsn
        self.id = uuid.uuid4()
        self.concurrency = concurrency or settings.concurrency
        self.worker_classes = dict(workers)
        #: Event-loop slots for async actions; 0 (no loop) when no worker has one.
        self.async_concurrency = 0
        if any(cls.async_actions() for cls in self.worker_classes.values()):
            self.async_concurrency = async_concurrency or settings.async_concurrency
        self.retry = RetryPolicy(settings.retry_base_delay, settings.retry_max_delay)
        self.workers: dict[str, BaseWorker] = {}
        #: Workers with limits (``s_workers.flow``, docs/limits.md) and with a ``notify`` setting
        #: (docs/notifications.md) by the table, not by this process's classes; reloaded by the
        #: heartbeat, read by the producer and the completer.
        self.limited: set[str] = set()
        self.notifying: set[str] = set()
        self.summary = Summary()
        self.clock = clock
        self._on_outcome = on_outcome
        self._stop_requests = 0
        self._stop_lock = threading.RLock()  # reentrant: request_stop may run in a signal handler
        self._stop_event = threading.Event()
        # On each connection of the daemon's own (not the workers' client): a transaction left
        # idle for ``stale_after`` is ended by the server. A daemon that hangs mid-transaction
        # (a frozen host, a cut network) would otherwise keep the rescuer's lock, or a task
        # row's lock, for as long as the server believes the connection alive.
        self._session = functools.partial(
            queries.server_end_idle_transactions, seconds=settings.stale_after
        )
        self.row = DaemonRow(self.id, self.concurrency, tuple(sorted(self.worker_classes)))
        self.fence = Fence(after=fence_after(settings.heartbeat_interval, settings.stale_after))
        self.gauge = Gauge()
        self.make_client = make_client
        # For the actions' create_task and store_result_file; its pool is made on first use.
        self.client = make_client(dsn, settings=settings)
        self._pool: ConnectionPool[Conn] | None = None
        self._claim_conn: Dedicated | None = None
        self._complete_conn: Dedicated | None = None
        self.slots: Slots | None = None
        self.producer: Producer | None = None
        self.completer: Completer | None = None
        self.hooks: HookCaller | None = None  # only when a worker defines a hook
        self.heartbeat: Heartbeat | None = None
        self.supervisor: Supervisor | None = None
        self.listener: Listener | None = None
        self.rescuer: Rescuer | None = None
        self.scheduler: Scheduler | None = None
        self.cleaner: Cleaner | None = None
        self.runner: Runner | None = None
        self.runs: RunTable | None = None

    # --- setup -------------------------------------------------------------------------------

    @property
    def pool(self) -> ConnectionPool[Conn]:
        """The daemon's connection pool (heartbeat, rescuer, cleaner, reporter, execute)."""
        assert self._pool is not None, "the daemon is not set up"
        return self._pool

    @property
    def identifiers(self) -> list[str]:
        """The identifiers of the workers this daemon runs."""
        return list(self.row.identifiers)

    @property
    def fence_after(self) -> float:
        """Seconds without a successful heartbeat after which the daemon fences itself."""
        return self.fence.after

    @property
    def fenced(self) -> bool:
        """The fence is closed: the daemon claims nothing and stops its actions."""
        return self.fence.closed

    def setup(self, *, batch_size: int | None = None, max_tasks: int | None = None) -> None:
        """Check the schema, register workers and this daemon, build the parts; the producer
        claims at most ``batch_size`` tasks at a time and ``max_tasks`` in all."""
        check_worker_settings(self.worker_classes.values(), self.retry)
        self._check_schema()
        self._register_workers_and_daemon()
        self._build_task_path(batch_size=batch_size, max_tasks=max_tasks)
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
            self.dsn,
            max_size=min(self.concurrency, 16) + 4,
            name="pgstask-daemon",
            on_connect=self._session,
        )
        with self.pool.connection() as conn:
            register_workers(conn, self.worker_classes.values(), active=s.auto_activate)
            written = schedules.write_declared(conn, self.worker_classes.values())
            states = queries.worker_states(conn, identifiers=self.identifiers)
            self.row.register(conn)
        for warning in written.warnings():
            _log.warning("%s", warning)
        stored = {r["identifier"]: r["settings"] for r in states}
        self.limited.update(r["identifier"] for r in states if r["flow"] is not None)
        self.notifying.update(r["identifier"] for r in states if r["notifies"])
        for ident, cls in self.worker_classes.items():
            self.workers[ident] = cls(stored.get(ident), client=self.client, storage=s.storage)

    def _build_task_path(self, *, batch_size: int | None, max_tasks: int | None) -> None:
        """Slots, completer, runner, run table and producer: the way of every task."""
        s, clock = self.settings, self.clock
        # Set by a freed slot and a written retry, whose parts are built before the producer.
        wakeup = threading.Event()
        self.slots = Slots(
            self.concurrency, async_concurrency=self.async_concurrency, on_free=wakeup.set
        )
        # The claim and the completion each run every few milliseconds under load: each on a
        # connection of its own (one round trip a statement), the pool serves everything else.
        self._claim_conn = Dedicated(self.dsn, name="pgstask-producer", on_connect=self._session)
        self._complete_conn = Dedicated(
            self.dsn, name="pgstask-completer", on_connect=self._session
        )
        hooks = HookCaller.for_workers(self.workers, pool=self.pool, storage=s.storage, clock=clock)
        self.hooks = hooks
        self.completer = Completer(
            db=self._complete_conn,
            daemon_id=self.id,
            storage=s.storage,
            on_retry=wakeup.set,
            on_written=hooks.add if hooks is not None else None,
            limited=self.limited.__contains__,
            notifying=self.notifying.__contains__,
            clock=clock,
        )
        self.runner = Runner(
            workers=self.workers,
            storage=s.storage,
            retry=self.retry,
            reporter=Reporter(
                completer=self.completer, pool=self.pool, daemon_id=self.id, storage=s.storage
            ),
            memory_sample=self.gauge.reading,
            dsn=self.dsn,
            make_client=self.make_client,
            clock=clock,
        )
        self.runs = RunTable(
            runner=self.runner,
            slots=self.slots,
            completer=self.completer,
            summary=self.summary,
            on_outcome=self._on_outcome,
            clock=clock,
        )
        self.producer = Producer(
            db=self._claim_conn,
            daemon_id=self.id,
            workers=self.workers,
            limited=self.limited,
            slots=self.slots,
            fence=self.fence,
            runs=self.runs,
            poll_interval=s.poll_interval,
            wakeup=wakeup,
            batch_size=batch_size,
            max_tasks=max_tasks,
            priority_age=s.priority_age,
            clock=clock,
        )

    def _build_loops(self) -> None:
        """Heartbeat, supervisor, rescuer, cleaner and listener: the loops beside the task
        path."""
        assert self.runs is not None and self.producer is not None
        s, clock = self.settings, self.clock
        self.heartbeat = Heartbeat(
            pool=self.pool,
            row=self.row,
            runs=self.runs,
            claim_lock=self.producer.claim_lock,
            workers=self.workers,
            limited=self.limited,
            notifying=self.notifying,
            on_limits=self.producer.wake,
            interval=s.heartbeat_interval,
            clock=clock,
        )
        self.supervisor = Supervisor(
            daemon_id=self.id,
            runs=self.runs,
            heartbeat=self.heartbeat,
            fence=self.fence,
            gauge=self.gauge,
            stale_after=s.stale_after,
            on_opened=self.producer.wake,
            clock=clock,
        )
        self.rescuer = Rescuer(
            pool=self.pool,
            storage=s.storage,
            stale_after=s.stale_after,
            base_delay=s.retry_base_delay,
            max_delay=s.retry_max_delay,
            interval=max(0.2, min(s.stale_after / 2, 30.0)),
            clock=clock,
        )
        self.cleaner = Cleaner(
            pool=self.pool,
            storage=s.storage,
            task_retention_days=s.task_retention_days,
            log_retention_days=s.log_retention_days,
            clock=clock,
        )
        self.scheduler = Scheduler(pool=self.pool, interval=s.poll_interval, clock=clock)
        if not s.poll_only:
            self.listener = Listener(
                dsn=self.dsn,
                on_tasks=self.producer.wake,
                on_cancel=self.runs.cancel,
                on_workers=self.heartbeat.wake,
                on_schedules=self.scheduler.wake,
                clock=clock,
            )

    # --- the main loops ----------------------------------------------------------------------

    def request_stop(self) -> None:
        """First call: graceful stop; second call: stop now (no grace period)."""
        with self._stop_lock:
            self._stop_requests += 1
        self._stop_event.set()

    def _start(self, *parts: Service | Slots | None) -> None:
        for part in parts:
            if part is not None:
                part.start()

    def run(self) -> Summary:
        """Run until ``request_stop``; then stop gracefully. Call from the main thread."""
        self.setup()
        self._start(
            self.slots,
            self.listener,
            self.completer,
            self.hooks,
            self.heartbeat,
            self.supervisor,
            self.rescuer,
            self.cleaner,
            self.scheduler,
            self.producer,
        )
        n, slots, loop = len(self.workers), self.concurrency, self.async_concurrency
        _log.info("daemon %s: %d worker(s), %d slot(s), %d async", self.id, n, slots, loop)
        try:
            # A short wait, not an endless one: the signal handlers run in this thread.
            while not self._stop_event.wait(0.2):
                pass
        finally:
            self._shutdown()
        return self.summary

    def run_once(self, *, batch_size: int | None = None, max_tasks: int | None = None) -> Summary:
        """Process what is due now (at most ``max_tasks``), wait for it, and return."""
        self.setup(batch_size=batch_size, max_tasks=max_tasks)
        producer, slots = self.producer, self.slots
        assert producer is not None and slots is not None
        self._start(slots, self.completer, self.hooks, self.heartbeat, self.supervisor)
        try:
            # Where cron's run-once is the only runner, it is also the rescuer and the cleaner:
            # tasks of a run killed mid-way are due again before this run claims.
            self._housekeeping()
            while not self._stop_event.is_set() and not producer.exhausted:
                # Only a claim made with every slot free, and that the supervisor's thread did
                # not open or close the fence under, tells that nothing is due: a claim made
                # while a lane's slots were taken finds nothing for that lane, however much is
                # due, even if those slots are free by the time it returns.
                fenced, idle = self.fence.closed, slots.busy == 0
                if producer.step() == 0:
                    if idle and self.fence.closed == fenced and not self._waiting_out_fence():
                        break
                    slots.wait_idle(0.1)  # wait for a slot (or the end)
            while not slots.wait_idle(0.2):
                if self._stop_event.is_set():
                    break
        finally:
            self._shutdown()
        return self.summary

    def _waiting_out_fence(self) -> bool:
        """``run-once``, fenced: nothing was claimed because of the fence, not because nothing
        is due. It waits for the database up to ``stale_after``, then ends (cron runs it
        again)."""
        return self.fence.closed and self.fence.closed_for(self.clock()) < self.settings.stale_after

    def _housekeeping(self) -> None:
        """One pass of the rescuer, the cleaner and the scheduler; a failure is logged, never
        fatal."""
        for service in (self.rescuer, self.cleaner, self.scheduler):
            if service is None:
                continue
            try:
                service.step()
            except Exception:
                _log.warning("pgstask %s pass failed", service.name, exc_info=True)

    def execute(self, task_id: int) -> Summary:
        """Claim one pending task by id (whatever its ``start_at``) and run it here."""
        self.setup()
        assert self.runs is not None and self.completer is not None
        self._start(self.completer, self.hooks)  # the action's progress and logs as it runs
        try:
            with self.pool.connection() as conn:
                task = claim_by_id(conn, daemon_id=self.id, id=task_id, workers=self.workers)
            self.runs.run_here(task)
        finally:
            self._shutdown()
        return self.summary

    def _shutdown(self) -> None:
        """Stop claiming, let actions finish, give back the rest, flush, run hooks, deregister."""
        for service in (self.producer, self.rescuer, self.cleaner, self.scheduler):
            if service is not None:
                service.stop()
        self._drain()
        if self.supervisor is not None:
            self.supervisor.stop()
        if self.completer is not None:
            if not self.completer.flush(timeout=10.0):
                left = self.completer.pending
                _log.error("could not write %d outcome(s); another daemon will rescue them", left)
            self.completer.stop()
        if self.hooks is not None:  # after the last outcomes are stored
            self.hooks.finish(0.0 if self._stop_requests > 1 else self.settings.shutdown_grace)
        self._close_dedicated()
        for last in (self.heartbeat, self.listener):
            if last is not None:
                last.stop()
        if self._pool is not None:
            self.row.leave(self._pool)
            self._pool.close()
        self.client.close()
        _log.info("daemon %s stopped: %s", self.id, describe_outcomes(self.summary.outcomes))

    def _drain(self) -> None:
        """Give the actions ``shutdown_grace`` seconds (none after a second stop request), then
        ask the rest to stop and give their tasks back. The supervisor runs during the grace
        period (timeouts, fencing) and stops with it: a run asked to stop for the shutdown is
        given back, not failed for a timeout its kill grace reaches meanwhile."""
        slots, runs = self.slots, self.runs
        if slots is None:
            return
        grace = 0.0 if self._stop_requests > 1 else self.settings.shutdown_grace
        deadline = self.clock() + grace
        while not slots.wait_idle(0.2):
            if self.clock() >= deadline or self._stop_requests > 1:
                break
        if self.supervisor is not None:
            self.supervisor.stop()
        if slots.busy and runs is not None:
            left = runs.stop(StopReason.SHUTDOWN)
            slots.wait_idle(0.5)  # cooperative actions give their task back themselves
            if any(a.run.isolation is Isolation.PROCESS for a in left):
                # their runner threads kill the child processes that did not stop
                slots.wait_idle(SHUTDOWN_KILL_GRACE + TERMINATE_WAIT + 1.0)
            for active in runs.under_way():
                runs.abandon(active, timed_out=False)
        slots.stop()

    def _close_dedicated(self) -> None:
        """Close the producer's and the completer's connections, unless a thread still uses
        one (its stop timed out): closing a connection under a thread in a statement is not
        safe, so it is left to the thread."""
        for dedicated, user in (
            (self._claim_conn, self.producer),
            (self._complete_conn, self.completer),
        ):
            if dedicated is None:
                continue
            if user is not None and user.alive:
                _log.warning("pgstask %s did not stop; its connection is left open", user.name)
            else:
                dedicated.close()
