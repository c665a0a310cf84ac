"""The scheduler: fires the due slots of schedules, one task per slot across every daemon.

Every daemon runs it, and ``pgstask run-once`` runs one pass before it claims, so that cron
alone can drive schedules. A pass reads the active schedules that are due (by the database
clock) and, for each:

- no next slot yet (new, changed, resumed): computes it and stores it (a compare-and-set);
- a due slot: fires it with ``schedule_fire``, which moves ``next_run_at`` from that slot to the
  following one (compare-and-set), records the run and inserts the task in one statement. A
  scheduler that loses the race to another one changes nothing; the primary key of
  ``s_schedule_runs`` forbids a second task for a slot whatever happens. A pass that came a
  little late (a busy host, a per-second schedule) loses no slot: the following slot, due too,
  fires in the next pass, at once;
- a slot older than ``MISFIRE_GRACE`` was missed while nothing ran: ``misfire: skip`` moves to
  the next slot after now without a task, ``run_once`` fires that one missed slot. Either way
  a schedule never enqueues its backlog of missed slots;
- an expression or zone pgstask cannot read (a row inserted by SQL), a preset it starts that
  does not exist (removed since), or a task PostgreSQL refuses to insert (data merged over a
  preset's past 1 MiB, a value inserted by SQL that no task can hold): the schedule is disabled
  with ``last_error``, and the pass goes on with the other schedules.

It wakes at the earliest ``next_run_at`` (a slot fires on time, not at the next poll), on
``NOTIFY pgstask_schedules`` (a schedule added or changed, through the listener), and otherwise
every ``interval`` seconds.
"""

from __future__ import annotations

import datetime as dt
import logging
import time
from typing import Any

import psycopg
from psycopg_pool import ConnectionPool

from pgstask import queries
from pgstask.cron import Cron
from pgstask.db import Conn, describe
from pgstask.errors import InvalidScheduleError
from pgstask.runtime.service import Clock, Service

_log = logging.getLogger(__name__)

#: A slot fired later than this after its time was missed (nothing ran): its schedule's
#: ``misfire`` decides.
MISFIRE_GRACE = dt.timedelta(seconds=60)
#: Schedules read per pass (a pass with this many due runs again at once).
BATCH = 100


class Scheduler(Service):
    """Fires the due slots of schedules (see the module docstring)."""

    name = "scheduler"

    def __init__(
        self,
        *,
        pool: ConnectionPool[Conn],
        interval: float,
        clock: Clock = time.monotonic,
    ) -> None:
        super().__init__(interval=interval, clock=clock)
        self.pool = pool
        #: Tasks enqueued by this scheduler (all passes).
        self.enqueued = 0
        self._next_due: float | None = None  # clock time of the earliest next_run_at
        self._full = False

    def step(self) -> int:
        """One pass; returns how many tasks it enqueued."""
        with self.pool.connection() as conn:
            due = queries.schedule_due(conn, limit=BATCH)
        enqueued = sum(self._one(row) for row in due)
        self._full = len(due) == BATCH
        with self.pool.connection() as conn:
            delay = queries.schedule_next_run_at(conn)
        self._next_due = None if delay is None else self.clock() + max(0.0, delay)
        self.enqueued += enqueued
        return enqueued

    def next_delay(self, result: object) -> float:
        """At once after a full batch; else at the earliest slot or the next poll."""
        if self._full:
            return 0.0
        if self._next_due is None:
            return self.interval
        return min(self.interval, max(0.0, self._next_due - self.clock()))

    def _one(self, row: dict[str, Any]) -> int:
        name, now, slot = row["name"], row["now"], row["next_run_at"]
        try:
            cron = Cron(row["cron"], row["timezone"])
        except InvalidScheduleError as exc:
            return self._disable(name, str(exc))
        if row["preset_missing"]:
            return self._disable(
                name,
                f"preset {row['preset']!r} does not exist (any more): add it again, or give the "
                "schedule another one, then resume the schedule",
            )
        missed = slot is not None and now - slot > MISFIRE_GRACE
        # On time or a little late: the slot after this one (a later pass fires it at once if it
        # is due too, so a late pass loses no slot); missed or not computed yet: after now.
        following = cron.next_after(now if slot is None or missed else slot)
        if following is None:
            return self._disable(name, f"{cron.expression!r} matches no time in 50 years")
        with self.pool.connection() as conn:
            if slot is None:
                queries.schedule_move(conn, name=name, slot=None, next_run_at=following)
                return 0
            if missed and row["misfire"] == "skip":
                if queries.schedule_move(conn, name=name, slot=slot, next_run_at=following):
                    _log.warning(
                        "schedule %s: slot %s was missed (nothing ran); skipped to %s",
                        name,
                        slot.isoformat(),
                        following.isoformat(),
                    )
                return 0
        try:
            with self.pool.connection() as conn:
                fired = queries.schedule_fire(conn, name=name, slot=slot, next_run_at=following)
        except (psycopg.IntegrityError, psycopg.DataError) as exc:
            # A task no row of s_tasks can hold: it would fail again at every pass.
            return self._disable(name, f"its task cannot be inserted: {describe(exc)}")
        if fired is None or fired["task_id"] is None:
            return 0  # another scheduler fired it first
        _log.info("schedule %s: slot %s -> task %s", name, slot.isoformat(), fired["task_id"])
        return 1

    def _disable(self, name: str, error: str) -> int:
        _log.error("schedule %s cannot run and is disabled: %s", name, error)
        with self.pool.connection() as conn:
            queries.schedule_disable(conn, name=name, error=error)
        return 0
