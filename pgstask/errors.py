"""The exceptions pgstask raises.

::

    PgstaskError
    ├── ConfigurationError      a setting or flag is invalid
    ├── DatabaseError           PostgreSQL could not be reached or refused a statement
    │   └── SchemaError         the schema is missing or older than this pgstask
    ├── InvalidTaskError        a task's fields were rejected (by pgstask or by a constraint)
    │   └── FileTooLargeError   an upload or stored file passes its size limit
    ├── TaskNotFoundError       no task has that id
    ├── TaskFileNotFoundError   no (complete) stored file answers the request
    ├── TaskStateError          the task is not in a state that allows the operation
    ├── WorkerNotFoundError     no worker has that identifier
    ├── UnknownActionError      the worker has no method for the action
    └── TaskCancelled           raised inside an action whose task was cancelled or timed out

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


class TaskCancelled(PgstaskError):
    """Raised inside an action whose task was cancelled, timed out, or given back at shutdown.

    Actions should let it propagate; the runner records the right outcome.
    """
