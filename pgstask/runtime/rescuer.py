"""The rescuer: gives back the tasks of daemons that stopped heartbeating.

Every daemon runs it, but one pass at a time across the cluster: the pass holds a transaction-
scoped advisory lock (``pg_try_advisory_xact_lock``), and a daemon that does not get it skips.
A task held by a daemon whose heartbeat is older than ``stale_after`` goes back to pending
after a backoff, or fails when its attempts (counted at claim) are used up; each rescue is
logged on the task, and the deliveries of a final failure (docs/notifications.md) are inserted
in the same transaction. Stale daemon rows are then deleted. Staleness is judged by the database
clock only, inside the UPDATE, so a task that completed meanwhile is left alone.
"""

from __future__ import annotations

import logging
import time
from pathlib import Path

from psycopg_pool import ConnectionPool

from pgstask import logs, queries
from pgstask.db import Conn
from pgstask.logs import LogRecord
from pgstask.runtime.service import Clock, Service
from pgstask.task import Status

_log = logging.getLogger(__name__)

LOCK_KEY = 0x70677372  # "pgsr"


class Rescuer(Service):
    """Takes the tasks of daemons whose heartbeat went stale (see the module docstring)."""

    name = "rescuer"

    def __init__(
        self,
        *,
        pool: ConnectionPool[Conn],
        storage: Path | None,
        stale_after: float,
        base_delay: float,
        max_delay: float,
        interval: float,
        clock: Clock = time.monotonic,
    ) -> None:
        super().__init__(interval=interval, clock=clock)
        self.pool = pool
        self.storage = storage
        self.stale_after = stale_after
        self.base_delay = base_delay
        self.max_delay = max_delay

    def step(self) -> int:
        """One pass; returns how many tasks were rescued or failed (0 if another daemon ran)."""
        with self.pool.connection() as conn, conn.transaction():
            if not queries.lock_try_acquire(conn, key=LOCK_KEY):
                return 0
            rows = queries.task_rescue(
                conn,
                stale_after=self.stale_after,
                base_delay=self.base_delay,
                max_delay=self.max_delay,
            )
            dead = queries.daemon_delete_stale(conn, stale_after=self.stale_after)
            records = [
                LogRecord.make(
                    r["id"],
                    "error" if r["status"] == Status.FAILED else "warning",
                    "Rescued from a dead daemon: "
                    + ("no attempts left, failed" if r["status"] == Status.FAILED else "retrying"),
                    attempt=r["attempts"],
                )
                for r in rows
            ]
            logs.write(conn, self.storage, records)
            failed = [r["id"] for r in rows if r["status"] == Status.FAILED]
            if failed:  # their deliveries, in this transaction (docs/notifications.md)
                queries.notification_enqueue(conn, ids=failed)
            if any(r["status"] == Status.PENDING for r in rows):
                queries.task_notify(conn)
        for daemon in dead:
            _log.warning(
                "daemon %s (%s pid %s) stopped heartbeating; removed",
                daemon["id"],
                daemon["hostname"],
                daemon["pid"],
            )
        if rows:
            _log.warning("rescued %d task(s) from dead daemons", len(rows))
        return len(rows)
