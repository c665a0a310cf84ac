"""The producer: claims as many due tasks as there are free slots, and hands them over.

It runs when woken (a NOTIFY for new tasks, a slot freed, a reconnect, a retry scheduled, the
fence opened) and otherwise every ``poll_interval`` seconds, or at the earliest future
``start_at`` of a task this daemon could run, whichever comes first: a scheduled task starts on
time, not at the next poll (a claim that took tasks but fewer than it asked for reuses that
time for ``DUE_REREAD`` seconds: it steps again at once anyway). What wakes it is set up
before it: the slots and the completer set its ``wakeup`` event, the listener and the
supervisor call ``wake``.

It claims at most the free slots, at most ``batch_size`` at a time and ``max_tasks`` in all
(``pgstask run-once``), and nothing while the ``Fence`` is closed. The claimed tasks go to the
``RunTable``, which starts their runs.

Two kinds of slots: threads for ``def`` actions, the event loop's for ``async def`` ones
(``Slots.free``, ``Slots.free_async``). A claimed task never waits for a slot, so the workers are
claimed for in up to three lanes, each at most the room it is sure of: the workers whose actions
are all ``def`` for the free threads, those whose actions are all ``async def`` for the free loop
slots, and the workers with actions of both kinds for the smaller of what is left of each (each
of their tasks then takes a slot of its action's kind). The lanes take turns going first, so that
a backlog in one does not starve another of the slots they share. A daemon with one kind of
worker claims in one lane, as before: one statement.

Two claims share the room (docs/limits.md): ``task_claim`` takes the tasks of workers without
flow control, in one statement; ``task_claim_limited`` those of workers with a ``max_running``,
``max_running_per_key``, ``rate_limit`` or ``fair_share`` setting, under a lock per worker. The
second runs only while one of this daemon's workers has such a setting (``s_workers.flow``,
as the heartbeat last reloaded it), so a daemon without limits pays nothing for them; the two
take turns going first, so neither kind starves the other of a small room. Tasks a limit holds
back wait for the NOTIFY that the end of a running task of a limited worker sends, not for the
next poll.

A claim and the hand-over of its tasks happen under ``claim_lock``: the heartbeat takes it to
give back what the daemon holds in the database without knowing it (a claim whose reply was
lost), so it never mistakes a claim in progress for one. A row of a claim that pgstask cannot
read is handed over as an ``UnreadableTask`` (the daemon fails it with the reason) and poisons
nothing: the other tasks of the claim run.
"""

from __future__ import annotations

import logging
import threading
import time
import uuid
from collections.abc import Collection, Mapping

from pgstask import queries
from pgstask.db import Conn, Connections
from pgstask.errors import TaskNotFoundError, TaskStateError, WorkerNotFoundError
from pgstask.runtime.runs import RunTable
from pgstask.runtime.service import Clock, Service
from pgstask.runtime.slots import Slots
from pgstask.runtime.supervisor import Fence
from pgstask.task import Task
from pgstask.workers.base import BaseWorker

_log = logging.getLogger(__name__)


#: Seconds a read of the earliest future ``start_at`` serves the claims that took some tasks.
DUE_REREAD = 0.05


class Producer(Service):
    """Claims due tasks for the free slots and hands them to the run table."""

    name = "producer"

    def __init__(
        self,
        *,
        db: Connections,
        daemon_id: uuid.UUID,
        workers: Mapping[str, BaseWorker],
        slots: Slots,
        limited: Collection[str] = frozenset(),
        fence: Fence,
        runs: RunTable,
        poll_interval: float,
        wakeup: threading.Event | None = None,
        batch_size: int | None = None,
        max_tasks: int | None = None,
        priority_age: float | None = None,
        clock: Clock = time.monotonic,
    ) -> None:
        """``workers``: the workers this daemon runs, by identifier; ``limited``: those of them with
        limits (``s_workers.flow`` set), kept current by the heartbeat; ``wakeup``: the event that
        the parts built before the producer set to wake it; ``priority_age``: seconds after which a
        due task of a lower priority goes first (None: strict priorities)."""
        super().__init__(interval=poll_interval, clock=clock, wakeup=wakeup)
        self.db = db
        self.daemon_id = daemon_id
        self.workers = workers
        self.limited = limited
        self.identifiers = sorted(workers)
        self.slots = slots
        self.fence = fence
        self.runs = runs
        self.batch_size = batch_size
        self.max_tasks = max_tasks
        self.priority_age = priority_age
        #: The identifiers of each lane: all-sync workers, all-async, both kinds.
        self.lanes = lanes(workers)
        #: Tasks claimed so far.
        self.claimed = 0
        self.claim_lock = threading.Lock()
        self._next_due: float | None = None  # clock time of the earliest future start_at
        self._due_read: float | None = None  # clock time ``_next_due`` was read
        self._limited_first = False
        self._turn = 0  # the worker the next claim starts with

    @property
    def exhausted(self) -> bool:
        """``max_tasks`` tasks have been claimed: it claims no more."""
        return self.max_tasks is not None and self.claimed >= self.max_tasks

    def _budget(self) -> int:
        """How many tasks the next claim may take in all lanes (``batch_size``, ``max_tasks``,
        the fence)."""
        if self.fence.closed:
            return 0
        budget = self.slots.free + self.slots.free_async
        if self.batch_size is not None:
            budget = min(budget, self.batch_size)
        if self.max_tasks is not None:
            budget = min(budget, self.max_tasks - self.claimed)
        return budget

    def _room(self) -> int:
        """How many tasks the next claim may take (in the lanes that have workers)."""
        threads, loop = self.slots.free, self.slots.free_async
        sync_ids, async_ids, both = self.lanes
        room = (threads if sync_ids else 0) + (loop if async_ids else 0)
        if both:
            room = max(room, min(threads, loop))
        return min(room, self._budget())

    def step(self) -> int:
        """Claim up to the free slots and start the tasks' runs; returns how many were claimed."""
        # Woken by the first slot that freed up: let the action threads that are finishing at
        # the same moment run first (sleep(0) hands over the GIL), so that one claim fills the
        # slots they free too instead of a claim per slot. It costs microseconds, not latency.
        time.sleep(0)
        if self._room() <= 0 or not self.identifiers:
            return 0
        # Each claim starts with the next worker: within a priority, the workers take turns.
        self._turn += 1
        with self.claim_lock:
            with self.db.connection() as conn:
                tasks, asked = self._claim_lanes(conn)
            self.claimed += len(tasks)
            tasks.sort(key=lambda t: (t.priority != "high", t.priority == "low", t.start_at, t.id))
            for task in tasks:
                self.runs.start(task)
        # Only after the claim committed and the actions started: when nothing more is due,
        # find when the next scheduled task becomes due (the timed wake-up).
        if len(tasks) >= asked:
            self._next_due = self._due_read = None
        elif not tasks or not self._due_fresh():
            with self.db.connection() as conn:
                self._next_due = self._due_in(conn, self.identifiers)
            self._due_read = self.clock()
        return len(tasks)

    def _due_fresh(self) -> bool:
        """``_next_due`` was read less than ``DUE_REREAD`` seconds ago. A claim that took
        tasks but fewer than it asked for (a lane with nothing due beside a busy one) keeps it:
        the producer steps again at once or when a slot frees, so the read matters only once
        it goes idle, and a step that claims nothing always reads it again."""
        return self._due_read is not None and self.clock() - self._due_read < DUE_REREAD

    def _claim_lanes(self, conn: Conn) -> tuple[list[Task], int]:
        """Claim in each lane with workers, at most its room; (the tasks, how many were asked
        for)."""
        threads, loop, budget = self.slots.free, self.slots.free_async, self._budget()
        tasks: list[Task] = []
        asked = 0
        first = self._turn % len(self.lanes)  # the lanes take turns going first too
        for lane in [*range(first, len(self.lanes)), *range(first)]:
            identifiers = self.lanes[lane]
            room = min((threads, loop, min(threads, loop))[lane], budget - len(tasks))
            if room <= 0 or not identifiers:
                continue
            turn = self._turn % len(identifiers)
            got = self._claim(conn, identifiers[turn:] + identifiers[:turn], room)
            if len(got) > room:  # cannot happen with the materialised CTE; never overrun
                raise RuntimeError(f"claimed {len(got)} tasks for {room} slots")
            asked += room
            tasks += got
            if lane != 1:
                threads -= len(got)
            if lane != 0:
                loop -= len(got)
        return tasks, asked

    def _claim(self, conn: Conn, identifiers: list[str], free: int) -> list[Task]:
        """Both claims in turn (the limited one only while a worker has limits), up to ``free``."""
        claims = [queries.task_claim]
        if self.limited:
            self._limited_first = not self._limited_first
            claims = [queries.task_claim_limited, queries.task_claim]
            if not self._limited_first:
                claims.reverse()
        tasks: list[Task] = []
        for claim in claims:
            if len(tasks) < free:
                tasks += claim(
                    conn,
                    daemon_id=self.daemon_id,
                    identifiers=identifiers,
                    limit=free - len(tasks),
                    age=self.priority_age,
                )
        return tasks

    def _due_in(self, conn: Conn, identifiers: list[str]) -> float | None:
        delay = queries.task_next_start_at(conn, identifiers=identifiers)
        if delay is None:
            return None
        return self.clock() + delay

    def next_delay(self, result: object) -> float:
        """At once after a full claim with slots still free; else at the next poll or the
        earliest future ``start_at``, whichever comes first."""
        if isinstance(result, int) and result > 0 and self._room() > 0:
            return 0.0  # there may be more due right now
        delay = self.interval
        if self._next_due is not None:
            delay = min(delay, max(0.0, self._next_due - self.clock()))
        return delay


def lanes(workers: Mapping[str, BaseWorker]) -> tuple[list[str], list[str], list[str]]:
    """The identifiers of ``workers`` by the kinds of their actions: (only ``def``, only
    ``async def``, both), each sorted."""
    sync_ids: list[str] = []
    async_ids: list[str] = []
    both: list[str] = []
    for identifier in sorted(workers):
        cls = type(workers[identifier])
        n_async, n_all = len(cls.async_actions()), len(cls.actions())
        lane = both if 0 < n_async < n_all else async_ids if n_async else sync_ids
        lane.append(identifier)
    return sync_ids, async_ids, both


def claim_by_id(
    conn: Conn, *, daemon_id: uuid.UUID, id: int, workers: Mapping[str, BaseWorker]
) -> Task:
    """Claim the pending task ``id`` (whatever its ``start_at``) for ``Daemon.execute``; an
    error that says why when it is not there, not one of ``workers``', or cannot be claimed."""
    current = queries.task_get(conn, id=id)
    if current is None:
        raise TaskNotFoundError(id)
    if current.identifier not in workers:
        raise WorkerNotFoundError(current.identifier)
    task = queries.task_claim_by_id(conn, daemon_id=daemon_id, id=id)
    if task is not None:
        return task
    current = queries.task_get(conn, id=id) or current  # taken meanwhile, or held by a limit
    raise TaskStateError(
        f"task {id} is pending, but its worker {current.identifier!r} is at one of its limits "
        "(docs/limits.md): it starts when the limit allows"
        if current.is_pending
        else f"task {id} is {current.status_text}; only pending tasks can be executed"
    )
