"""The ``Client``'s log methods: reading a task's log records, clearing them, and adding one
from outside the task's action. What a log record is and how it is stored belongs to
``logs.py``."""

from __future__ import annotations

from typing import Any

from pgstask import logs
from pgstask._client_base import ClientBase, _task_id
from pgstask.logs import LogRecord
from pgstask.task import Task

Records = list[LogRecord]


class ClientLogs(ClientBase):
    """The log methods of ``Client``."""

    def logs(self, task: Task | int, limit: int | None = None) -> Records:
        """A task's log records, oldest first (the last ``limit`` if given)."""
        with self.connection() as c:
            return logs.read(c, _task_id(task), limit=limit)

    def last_logs(self, task: Task | int, n: int = 10) -> Records:
        """The last ``n`` log records of a task, oldest first."""
        return self.logs(task, limit=n)

    def error_logs(self, task: Task | int) -> Records:
        """The log records of a task at level ``error`` or ``critical``, oldest first."""
        with self.connection() as c:
            return logs.read(c, _task_id(task), errors_only=True)

    def clear_logs(self, task: Task | int) -> int:
        """Delete a task's log records (rows and ``{id}.log`` file); returns how many rows."""
        with self.connection() as c:
            return logs.clear(c, self.settings.storage, _task_id(task))

    def log(self, task: Task | int, level: str, message: str, **context: Any) -> None:
        """Add a log record to a task from outside its action."""
        record = LogRecord.make(_task_id(task), level, message, **context)
        with self.connection() as c:
            logs.write(c, self.settings.storage, [record])
