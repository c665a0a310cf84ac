"""The producer: claims as many due tasks as there are free slots, and hands them over.

It runs when woken (a NOTIFY for new tasks, a slot freed, a reconnect, a retry scheduled) and
otherwise every ``poll_interval`` seconds, or at the earliest future ``start_at`` of a task this
daemon could run, whichever comes first: a scheduled task starts on time, not at the next poll.

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
from collections.abc import Callable, Sequence

from pgstask import queries
from pgstask.db import Conn, Connections
from pgstask.runtime.service import Service
from pgstask.task import Task

_log = logging.getLogger(__name__)


class Producer(Service):
    name = "producer"

    def __init__(
        self,
        *,
        db: Connections,
        daemon_id: uuid.UUID,
        identifiers: Callable[[], Sequence[str]],
        free_slots: Callable[[], int],
        submit: Callable[[Task], None],
        poll_interval: float,
        batch_size: int | None = None,
    ) -> None:
        super().__init__(interval=poll_interval)
        self.db = db
        self.daemon_id = daemon_id
        self._identifiers = identifiers
        self._free_slots = free_slots
        self._submit = submit
        self.batch_size = batch_size
        self.paused = False
        self.claim_lock = threading.Lock()
        self._next_due: float | None = None  # monotonic time of the earliest future start_at

    def run_once(self) -> int:
        """Claim up to the free slots and submit the tasks; returns how many were claimed."""
        # Woken by the first slot that freed up: let the action threads that are finishing at
        # the same moment run first (sleep(0) hands over the GIL), so that one claim fills the
        # slots they free too instead of a claim per slot. It costs microseconds, not latency.
        time.sleep(0)
        free = self._free_slots()
        if self.batch_size is not None:
            free = min(free, self.batch_size)
        identifiers = list(self._identifiers())
        if self.paused or free <= 0 or not identifiers:
            return 0
        with self.claim_lock:
            with self.db.connection() as conn:
                tasks = queries.task_claim(
                    conn, daemon_id=self.daemon_id, identifiers=identifiers, limit=free
                )
            if len(tasks) > free:  # cannot happen with the materialised CTE; never overrun
                raise RuntimeError(f"claimed {len(tasks)} tasks for {free} slots")
            tasks.sort(key=lambda t: (t.priority != "high", t.priority == "low", t.start_at, t.id))
            for task in tasks:
                self._submit(task)
        # Only after the claim committed and the actions started: when nothing more is due,
        # find when the next scheduled task becomes due (the timed wake-up).
        self._next_due = None
        if len(tasks) < free:
            with self.db.connection() as conn:
                self._next_due = self._due_in(conn, identifiers)
        return len(tasks)

    def _due_in(self, conn: Conn, identifiers: list[str]) -> float | None:
        delay = queries.task_next_start_at(conn, identifiers=identifiers)
        if delay is None:
            return None
        return time.monotonic() + delay

    def next_delay(self, result: object) -> float:
        if isinstance(result, int) and result > 0 and self._free_slots() > 0:
            return 0.0  # there may be more due right now
        delay = self.interval
        if self._next_due is not None:
            delay = min(delay, max(0.0, self._next_due - time.monotonic()))
        return delay
