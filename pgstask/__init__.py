"""pgstask: PostgreSQL-native background tasks for Python.

Tasks are rows of ``s_tasks``; ``pgstask daemon`` processes claim them with
``FOR UPDATE SKIP LOCKED`` and run them on ``BaseWorker`` subclasses. See the README.
"""

from __future__ import annotations

from pgstask._version import __version__
from pgstask.async_client import AsyncClient
from pgstask.client import Client
from pgstask.errors import (
    ConfigurationError,
    DatabaseError,
    InvalidOptionsError,
    InvalidPresetError,
    InvalidScheduleError,
    InvalidTaskError,
    PgstaskError,
    PresetNotFoundError,
    Retry,
    ScheduleNotFoundError,
    SchemaError,
    Snooze,
    TaskCancelled,
    TaskControl,
    TaskNotFoundError,
    TaskStateError,
    TaskStopped,
    UnknownActionError,
    WorkerNotFoundError,
)
from pgstask.settings import Settings
from pgstask.task import Status, Task
from pgstask.workers import BaseWorker

__all__ = [
    "AsyncClient",
    "BaseWorker",
    "Client",
    "ConfigurationError",
    "DatabaseError",
    "InvalidOptionsError",
    "InvalidPresetError",
    "InvalidScheduleError",
    "InvalidTaskError",
    "PgstaskError",
    "PresetNotFoundError",
    "Retry",
    "ScheduleNotFoundError",
    "SchemaError",
    "Settings",
    "Snooze",
    "Status",
    "Task",
    "TaskCancelled",
    "TaskControl",
    "TaskNotFoundError",
    "TaskStateError",
    "TaskStopped",
    "UnknownActionError",
    "WorkerNotFoundError",
    "__version__",
]
