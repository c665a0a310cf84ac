"""The heartbeat: keeps this daemon's ``s_daemons`` row fresh and its view of the world current.

Each beat (every ``heartbeat_interval`` seconds, or when woken by a worker change):

- ``UPDATE s_daemons SET heartbeat_at = now()``; 0 rows means other daemons declared this one
  dead and rescued its tasks, so it registers again (its ``DaemonRow``) and stops the actions it
  still runs. ``last_beat`` is the ``clock`` time at which the last successful beat was sent:
  the supervisor fences the daemon when it grows too old (``runtime/supervisor.py``);
- asks which of its runs it no longer holds (cancelled, rescued, or replaced by a later run
  of the task) and stops them, which also covers a missed ``pgstask_cancel`` notification;
- gives back what it holds in the database but does not know it holds (``RunTable.known``
  lacks it):
  a claim that committed but whose reply never arrived, whatever else lost a claimed row. It
  takes the producer's ``claim_lock`` for that, so a claim in progress is never mistaken for
  one; when the lock stays busy (a quarter of the interval, at most a second) it leaves that
  check to the next beat;
- reloads the settings of its workers (``s_workers.settings`` over the class's), and which of
  them have limits or a ``notify`` setting.
"""

from __future__ import annotations

import logging
import os
import socket
import threading
import time
import uuid
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from typing import Any

from psycopg_pool import ConnectionPool

from pgstask import queries
from pgstask._version import __version__
from pgstask.db import Conn
from pgstask.runtime.runs import RunTable
from pgstask.runtime.service import Clock, Service
from pgstask.task import RunKey
from pgstask.workers.base import BaseWorker

_log = logging.getLogger(__name__)

CLAIM_LOCK_WAIT = 1.0


@dataclass(frozen=True, slots=True)
class DaemonRow:
    """This daemon's row of ``s_daemons``: written at its start, again when other daemons
    declared it dead, deleted when it stops."""

    id: uuid.UUID
    concurrency: int
    identifiers: tuple[str, ...]

    def register(self, conn: Conn) -> None:
        """Insert (or replace) the row: host, pid, slots, workers and version."""
        queries.daemon_register(
            conn,
            id=self.id,
            hostname=socket.gethostname(),
            pid=os.getpid(),
            concurrency=self.concurrency,
            identifiers=list(self.identifiers),
            version=__version__,
        )

    def deregister(self, conn: Conn) -> None:
        """Delete the row (the daemon stopped)."""
        queries.daemon_deregister(conn, id=self.id)

    def leave(self, pool: ConnectionPool[Conn]) -> None:
        """Delete the row at the daemon's stop, waiting at most 5 s for a connection; a failure
        is logged (the row then goes stale, and the rescuer treats it as a dead daemon's)."""
        try:
            with pool.connection(timeout=5.0) as conn:
                self.deregister(conn)
        except Exception:
            _log.warning("could not remove daemon row %s", self.id, exc_info=True)


class Heartbeat(Service):
    """Keeps the daemon's row fresh and its runs and worker settings current (see the module
    docstring)."""

    name = "heartbeat"

    def __init__(
        self,
        *,
        pool: ConnectionPool[Conn],
        row: DaemonRow,
        runs: RunTable,
        claim_lock: threading.Lock,
        workers: Mapping[str, BaseWorker],
        interval: float,
        limited: set[str] | None = None,
        notifying: set[str] | None = None,
        on_limits: Callable[[], None] = lambda: None,
        clock: Clock = time.monotonic,
    ) -> None:
        """``claim_lock`` is the producer's; ``workers`` are the daemon's worker instances,
        whose settings each beat reloads; ``limited``, the set of those with limits
        (``s_workers.flow`` set), is kept current with them, and so is ``notifying``, the set
        of those with a ``notify`` setting (docs/notifications.md); ``on_limits`` (the producer's
        ``wake``) is called when a worker's limits changed: a raised limit lets held-back tasks
        start now, not at the next poll."""
        super().__init__(interval=interval, clock=clock)
        self.pool = pool
        self.row = row
        self.runs = runs
        self._claim_lock = claim_lock
        self.workers = workers
        self.limited = set() if limited is None else limited
        self.notifying = set() if notifying is None else notifying
        self._on_limits = on_limits
        self._flows: dict[str, Any] = {}  # each worker's limits at the last reload
        self.beats = 0
        #: When the last successful beat was sent (``clock`` time); set at construction, as the
        #: daemon registered just before.
        self.last_beat = self._sent = clock()
        #: Runs given back because this daemon held them without knowing (all beats).
        self.given_back = 0

    def next_delay(self, result: object) -> float:
        """Until the next beat at a fixed rate."""
        # A fixed rate: the time a beat took does not push the next one back.
        return max(0.0, self._sent + self.interval - self.clock())

    def step(self) -> list[RunKey]:
        """One beat; returns the runs this daemon no longer holds."""
        sent = self._sent = self.clock()
        daemon_id = self.row.id
        with self.pool.connection() as conn:
            if not queries.daemon_heartbeat(conn, id=daemon_id):
                _log.warning("daemon %s was declared dead; registering again", daemon_id)
                self.row.register(conn)
            ids, claims = _columns(self.runs.known())
            lost = queries.task_lost(conn, daemon_id=daemon_id, ids=ids, claims=claims)
            states = queries.worker_states(conn, identifiers=list(self.row.identifiers))
        self.last_beat = max(self.last_beat, sent)
        self.beats += 1
        if lost:
            self.runs.lost(lost)
        self._give_back_unknown()
        self._reload(states)
        return lost

    def _reload(self, states: list[dict[str, Any]]) -> None:
        for state in states:
            worker = self.workers.get(state["identifier"])
            if worker is not None:
                worker.settings = {**type(worker).settings, **(state["settings"] or {})}
            for found, into in (
                (state["flow"] is not None, self.limited),
                (state["notifies"], self.notifying),
            ):
                if found:
                    into.add(state["identifier"])
                else:
                    into.discard(state["identifier"])
        flows = {state["identifier"]: state["flow"] for state in states}
        changed = bool(self._flows) and flows != self._flows
        self._flows = flows
        if changed:
            self._on_limits()

    def _give_back_unknown(self) -> None:
        # Never long: the next beat must not be late (the daemon fences itself on old beats).
        if not self._claim_lock.acquire(timeout=min(CLAIM_LOCK_WAIT, self.interval / 4)):
            return  # a claim is in progress (or stuck): the next beat checks
        try:
            ids, claims = _columns(self.runs.known())
            with self.pool.connection() as conn:
                given = queries.task_give_back_unknown(
                    conn, daemon_id=self.row.id, ids=ids, claims=claims
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
