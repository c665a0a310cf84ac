"""The heartbeat: keeps this daemon's ``s_daemons`` row fresh and its view of the world current.

Each beat (every ``heartbeat_interval`` seconds, or when woken by a worker change):

- ``UPDATE s_daemons SET heartbeat_at = now()``; 0 rows means other daemons declared this one
  dead and rescued its tasks, so it registers again and stops the actions it still runs.
  ``last_beat`` is the monotonic time at which the last successful beat was sent: the daemon
  fences itself when it grows too old (``Daemon``);
- asks which of its runs it no longer holds (cancelled, rescued, or replaced by a later run
  of the task) and stops them, which also covers a missed ``pgstask_cancel`` notification;
- gives back what it holds in the database but does not know it holds (``known`` lacks it):
  a claim that committed but whose reply never arrived, whatever else lost a claimed row. It
  takes the producer's ``claim_lock`` for that, so a claim in progress is never mistaken for
  one; when the lock stays busy (a quarter of the interval, at most a second) it leaves that
  check to the next beat;
- reloads the active flag and settings of its workers.
"""

from __future__ import annotations

import logging
import threading
import time
import uuid
from collections.abc import Callable, Sequence
from typing import Any

from psycopg_pool import ConnectionPool

from pgstask import queries
from pgstask.db import Conn
from pgstask.runtime.service import Service
from pgstask.task import RunKey

_log = logging.getLogger(__name__)

CLAIM_LOCK_WAIT = 1.0


class Heartbeat(Service):
    name = "heartbeat"

    def __init__(
        self,
        *,
        pool: ConnectionPool[Conn],
        daemon_id: uuid.UUID,
        register: Callable[[Conn], None],
        known: Callable[[], set[RunKey]],
        claim_lock: threading.Lock,
        identifiers: Sequence[str],
        on_lost: Callable[[list[RunKey]], None],
        on_workers: Callable[[list[dict[str, Any]]], None],
        interval: float,
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        super().__init__(interval=interval)
        self.pool = pool
        self.daemon_id = daemon_id
        self._register = register
        self._known = known
        self._claim_lock = claim_lock
        self.identifiers = list(identifiers)
        self._on_lost = on_lost
        self._on_workers = on_workers
        self._clock = clock
        self.beats = 0
        #: When the last successful beat was sent (``clock`` time); set at construction, as the
        #: daemon registered just before.
        self.last_beat = self._sent = clock()
        #: Runs given back because this daemon held them without knowing (all beats).
        self.given_back = 0

    def next_delay(self, result: object) -> float:
        # A fixed rate: the time a beat took does not push the next one back.
        return max(0.0, self._sent + self.interval - self._clock())

    def run_once(self) -> list[RunKey]:
        """One beat; returns the runs this daemon no longer holds."""
        sent = self._sent = self._clock()
        with self.pool.connection() as conn:
            if not queries.daemon_heartbeat(conn, id=self.daemon_id):
                _log.warning("daemon %s was declared dead; registering again", self.daemon_id)
                self._register(conn)
            ids, claims = _columns(self._known())
            lost = queries.daemon_lost_tasks(conn, id=self.daemon_id, ids=ids, claims=claims)
            states = queries.worker_states(conn, identifiers=self.identifiers)
        self.last_beat = max(self.last_beat, sent)
        self.beats += 1
        if lost:
            self._on_lost(lost)
        self._give_back_unknown()
        self._on_workers(states)
        return lost

    def _give_back_unknown(self) -> None:
        # Never long: the next beat must not be late (the daemon fences itself on old beats).
        if not self._claim_lock.acquire(timeout=min(CLAIM_LOCK_WAIT, self.interval / 4)):
            return  # a claim is in progress (or stuck): the next beat checks
        try:
            ids, claims = _columns(self._known())
            with self.pool.connection() as conn:
                given = queries.task_give_back_unknown(
                    conn, daemon_id=self.daemon_id, ids=ids, claims=claims
                )
                if given:
                    queries.task_notify(conn)
        finally:
            self._claim_lock.release()
        if given:
            self.given_back += len(given)
            _log.warning(
                "gave back %d task(s) this daemon held without running them: %s",
                len(given),
                ", ".join(str(task_id) for task_id, _ in given),
            )


def _columns(runs: set[RunKey]) -> tuple[list[int], list[int]]:
    """Runs as the two parallel arrays the queries take: task ids, claims."""
    return [task_id for task_id, _ in runs], [claims for _, claims in runs]
