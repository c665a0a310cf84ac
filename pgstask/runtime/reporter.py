"""What a running action reports, on its way to the database without making the action wait.

The runner hands every run a ``Reporter``. Progress rows (the latest state of each task) and log
rows go to the completer, which writes them with its next pass; a log line is appended to the
task's ``{id}.log`` file at once. So an action never waits on the database for them, and a
daemon cut off from it can still stop its actions at their next check. A phase change
(``mark_preparing``/``mark_running``) is written at once, a compare-and-set on the run, because
the worker needs its answer (False: the run no longer holds the task).
"""

from __future__ import annotations

import uuid
from pathlib import Path

from psycopg_pool import ConnectionPool

from pgstask import logs, queries
from pgstask.db import Conn
from pgstask.logs import LogRecord
from pgstask.progress import ProgressState
from pgstask.runtime.completer import Completer
from pgstask.task import Task


class Reporter:
    """Where the runs of one daemon send their progress, log records and phase changes."""

    def __init__(
        self,
        *,
        completer: Completer,
        pool: ConnectionPool[Conn],
        daemon_id: uuid.UUID,
        storage: Path,
    ) -> None:
        self.completer = completer
        self.pool = pool
        self.daemon_id = daemon_id
        self.storage = storage

    def progress(self, state: ProgressState) -> None:
        """A task's progress row, written with the completer's next pass."""
        self.completer.add_progress(state)

    def log(self, record: LogRecord) -> None:
        """A log record: in its file now, its row with the completer's next pass."""
        logs.append_files(self.storage, [record])
        self.completer.add_logs([record])

    def set_status(self, task: Task, status: int) -> bool:
        """A worker's phase change, a compare-and-set on its run; False if no longer held."""
        with self.pool.connection(timeout=5.0) as conn:
            return queries.task_set_status(
                conn, id=task.id, status=status, claims=task.claims, daemon_id=self.daemon_id
            )
