"""The producer: claims as many due tasks as there are free slots, and hands them over.

It runs when woken (a NOTIFY for new tasks, a slot freed, a reconnect, a retry scheduled, the
fence opened) and otherwise every ``poll_interval`` seconds, or at the earliest future
``start_at`` of a task this daemon could run, whichever comes first: a scheduled task starts on
time, not at the next poll. What wakes it is set up before it: the slots and the completer set
its ``wakeup`` event, the listener and the supervisor call ``wake``.

It claims at most the free slots, at most ``batch_size`` at a time and ``max_tasks`` in all
(``pgstask run-once``), and nothing while the ``Fence`` is closed. The claimed tasks go to the
``RunTable``, which starts their runs.

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
from pgstask.runtime.runs import RunTable
from pgstask.runtime.service import Clock, Service
from pgstask.runtime.slots import Slots
from pgstask.runtime.supervisor import Fence
from pgstask.task import Task
from pgstask.workers.base import BaseWorker

_log = logging.getLogger(__name__)


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
        #: Tasks claimed so far.
        self.claimed = 0
        self.claim_lock = threading.Lock()
        self._next_due: float | None = None  # clock time of the earliest future start_at
        self._limited_first = False
        self._turn = 0  # the worker the next claim starts with

    @property
    def exhausted(self) -> bool:
        """``max_tasks`` tasks have been claimed: it claims no more."""
        return self.max_tasks is not None and self.claimed >= self.max_tasks

    def _room(self) -> int:
        """How many tasks the next claim may take."""
        if self.fence.closed:
            return 0
        room = self.slots.free
        if self.batch_size is not None:
            room = min(room, self.batch_size)
        if self.max_tasks is not None:
            room = min(room, self.max_tasks - self.claimed)
        return room

    def step(self) -> int:
        """Claim up to the free slots and start the tasks' runs; returns how many were claimed."""
        # Woken by the first slot that freed up: let the action threads that are finishing at
        # the same moment run first (sleep(0) hands over the GIL), so that one claim fills the
        # slots they free too instead of a claim per slot. It costs microseconds, not latency.
        time.sleep(0)
        free = self._room()
        identifiers = self.identifiers
        if free <= 0 or not identifiers:
            return 0
        # Each claim starts with the next worker: within a priority, the workers take turns.
        self._turn = (self._turn + 1) % len(identifiers)
        identifiers = identifiers[self._turn :] + identifiers[: self._turn]
        with self.claim_lock:
            with self.db.connection() as conn:
                tasks = self._claim(conn, identifiers, free)
            if len(tasks) > free:  # cannot happen with the materialised CTE; never overrun
                raise RuntimeError(f"claimed {len(tasks)} tasks for {free} slots")
            self.claimed += len(tasks)
            tasks.sort(key=lambda t: (t.priority != "high", t.priority == "low", t.start_at, t.id))
            for task in tasks:
                self.runs.start(task)
        # Only after the claim committed and the actions started: when nothing more is due,
        # find when the next scheduled task becomes due (the timed wake-up).
        self._next_due = None
        if len(tasks) < free:
            with self.db.connection() as conn:
                self._next_due = self._due_in(conn, identifiers)
        return len(tasks)

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
