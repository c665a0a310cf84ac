"""The cleaner: retention of finished tasks and logs, progress snapshots and task log files.

Runs on every daemon every ``interval`` seconds; the database part is one pass at a time (a
transaction-scoped advisory lock), the file part is throttled per storage directory by the
``.gc_progress`` marker (see ``pgstask.progress.collect_garbage``): snapshots after 24 h,
``{id}.log`` files after the log retention. Stored files: uploads never completed after a day,
uploads no task took after the task retention (result files go with their tasks). Schedule
runs: those fired before the task retention, each schedule's latest kept.
"""

from __future__ import annotations

import time
from dataclasses import dataclass
from pathlib import Path

from psycopg_pool import ConnectionPool

from pgstask import limits, progress, queries
from pgstask.db import Conn
from pgstask.runtime.service import Clock, Service

LOCK_KEY = 0x70677363  # "pgsc"
DAY = 86400.0
#: A chunked upload not completed within this many seconds is deleted.
ABANDONED_UPLOAD_AGE = DAY


@dataclass(frozen=True, slots=True)
class Cleaned:
    """What one pass of the cleaner removed: task rows, log rows, progress rows, snapshot and
    log files, stored result files, schedule runs."""

    tasks: int = 0
    logs: int = 0
    progress_rows: int = 0
    files: int = 0
    stored_files: int = 0
    schedule_runs: int = 0


class Cleaner(Service):
    """Removes what is past its retention (see the module docstring); one daemon at a time."""

    name = "cleaner"

    def __init__(
        self,
        *,
        pool: ConnectionPool[Conn],
        storage: Path,
        task_retention_days: float | None,
        log_retention_days: float | None,
        interval: float = 3600.0,
        clock: Clock = time.monotonic,
    ) -> None:
        super().__init__(interval=interval, clock=clock)
        self.pool = pool
        self.storage = storage
        self.task_retention_days = task_retention_days
        self.log_retention_days = log_retention_days

    def step(self) -> Cleaned:
        """One pass, unless another daemon holds the cleaner's lock; returns what it removed."""
        tasks = logs = rows = stored = runs = 0
        with self.pool.connection() as conn, conn.transaction():
            if queries.lock_try_acquire(conn, key=LOCK_KEY):
                if self.task_retention_days is not None:
                    tasks = queries.task_delete_finished_before(conn, days=self.task_retention_days)
                    stored = queries.file_delete_unattached(
                        conn, max_age=self.task_retention_days * DAY
                    )
                    runs = queries.schedule_runs_delete_before(conn, days=self.task_retention_days)
                if self.log_retention_days is not None:
                    logs = queries.log_delete_older_than(conn, days=self.log_retention_days)
                rows = queries.progress_delete_orphaned(conn)
                stored += queries.file_delete_abandoned(conn, max_age=ABANDONED_UPLOAD_AGE)
                # A rate limit's window is at most a week: older starts count for nothing (the
                # claims delete their own worker's; these are of workers that lost the limit).
                queries.task_starts_delete_before(conn, seconds=limits.MAX_PER)
        files = progress.collect_garbage(
            self.storage,
            every=self.interval,
            log_max_age=None if self.log_retention_days is None else self.log_retention_days * DAY,
        )
        return Cleaned(tasks, logs, rows, files, stored, runs)
