"""The exceptions pgstask raises.

::

    PgstaskError
    ├── ConfigurationError      a setting or flag is invalid
    ├── DatabaseError           PostgreSQL could not be reached or refused a statement
    │   └── SchemaError         the schema is missing or older than this pgstask
    ├── InvalidTaskError        a task's fields were rejected (by pgstask or by a constraint)
    │   └── FileTooLargeError   an upload or stored file passes its size limit
    ├── InvalidScheduleError    a schedule's cron expression, time zone or fields were rejected
    ├── ScheduleNotFoundError   no schedule has that name
    ├── InvalidPresetError      a preset's name, worker, action or fields were rejected
    ├── PresetNotFoundError     no preset has that name
    ├── TaskNotFoundError       no task has that id
    ├── TaskFileNotFoundError   no (complete) stored file answers the request
    ├── TaskStateError          the task is not in a state that allows the operation
    ├── WorkerNotFoundError     no worker has that identifier
    ├── UnknownActionError      the worker has no method for the action
    └── TaskStopped             raised inside an action asked to stop, for any stop reason
                                (``TaskCancelled`` is another name of it)

psycopg errors are translated once, in ``pgstask.db``, with ``raise … from exc``.
"""

from __future__ import annotations


class PgstaskError(Exception):
    """Base class of every pgstask error."""


class ConfigurationError(PgstaskError):
    """A setting, environment variable or command-line flag is invalid."""


class DatabaseError(PgstaskError):
    """PostgreSQL could not be reached, or refused a statement."""


class SchemaError(DatabaseError):
    """The pgstask schema is missing or older than this version of pgstask."""


class InvalidTaskError(PgstaskError):
    """A task's fields were rejected."""


class InvalidScheduleError(PgstaskError):
    """A schedule was rejected: its cron expression, its time zone or another field."""


class ScheduleNotFoundError(PgstaskError):
    """No schedule has the given name."""

    def __init__(self, name: str) -> None:
        super().__init__(f"no schedule is named {name!r}")
        self.name = name


class InvalidPresetError(PgstaskError):
    """A preset was rejected: its name, its worker's action, its data or another field."""


class PresetNotFoundError(PgstaskError):
    """No preset has the given name (``schedule``: the schedule that names it)."""

    def __init__(self, name: str, *, schedule: str | None = None) -> None:
        if schedule is None:
            message = f"no preset is named {name!r}"
        else:
            message = (
                f"schedule {schedule!r} starts preset {name!r}, which does not exist (any "
                "more): add the preset again, or give the schedule another one"
            )
        super().__init__(message)
        self.name = name
        self.schedule = schedule


class TaskNotFoundError(PgstaskError):
    """No task has the given id."""

    def __init__(self, task_id: int) -> None:
        super().__init__(f"task {task_id} does not exist")
        self.task_id = task_id


class FileTooLargeError(InvalidTaskError):
    """A stored file or upload would pass its size limit."""


class TaskFileNotFoundError(PgstaskError):
    """No complete stored file answers the request (a task without a result file, an unknown
    file id)."""


class TaskStateError(PgstaskError):
    """The task is not in a state that allows the operation."""


class WorkerNotFoundError(PgstaskError):
    """No worker has the given identifier."""

    def __init__(self, identifier: str) -> None:
        super().__init__(f"no worker has the identifier {identifier!r}")
        self.identifier = identifier


class UnknownActionError(PgstaskError):
    """The worker has no method for the requested action."""


class TaskStopped(PgstaskError):
    """Raised inside an action asked to stop, whatever the reason: its task was cancelled, it
    timed out, the task is no longer this daemon's (lost), the daemon is stopping (shutdown) or
    lost the database for too long (fenced).

    ``reason`` is the value of the run's ``StopReason`` (``"cancelled"``, ``"timeout"``,
    ``"lost"``, ``"shutdown"``, ``"fenced"``), or None where it is not known: in the child
    process of a process-isolated action, which sees only the shared stop flag. Actions should
    let it propagate; the runner records the outcome the reason calls for.
    """

    def __init__(self, message: str = "", *, reason: str | None = None) -> None:
        super().__init__(message)
        self.reason = reason


#: sTask's name of ``TaskStopped``, kept for existing worker code: the same class, so
#: ``except TaskCancelled`` catches every stop, not only a cancellation.
TaskCancelled = TaskStopped
