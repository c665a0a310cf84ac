"""The exceptions pgstask raises.

::

    PgstaskError
    ├── ConfigurationError      a setting or flag is invalid
    ├── DatabaseError           PostgreSQL could not be reached or refused a statement
    │   └── SchemaError         the schema is missing or older than this pgstask
    ├── InvalidTaskError        a task's fields were rejected (by pgstask or by a constraint)
    │   ├── InvalidOptionsError its data does not match its action's options model
    │   └── FileTooLargeError   an upload or stored file passes its size limit
    ├── InvalidScheduleError    a schedule's cron expression, time zone or fields were rejected
    ├── ScheduleNotFoundError   no schedule has that name
    ├── InvalidPresetError      a preset's name, worker, action or fields were rejected
    ├── PresetNotFoundError     no preset has that name
    ├── InvalidWebhookError     a webhook's name, URL, events or secret, or a notify target, were
    │                           rejected
    ├── WebhookNotFoundError    no webhook has that name
    ├── TaskNotFoundError       no task has that id
    ├── TaskFileNotFoundError   no (complete) stored file answers the request
    ├── TaskStateError          the task is not in a state that allows the operation
    ├── WorkerNotFoundError     no worker has that identifier
    ├── UnknownActionError      the worker has no method for the action
    └── TaskStopped             raised inside an action asked to stop, for any stop reason
                                (``TaskCancelled`` is another name of it)

    TaskControl                 not an error: raised by an action to choose its task's outcome
    ├── Snooze                  pending again after some seconds, the attempt not counted
    └── Retry                   a failed attempt, retried after the given delay

psycopg errors are translated once, in ``pgstask.db``, with ``raise … from exc``.

``TaskControl`` stands beside ``PgstaskError``, not under it: pgstask does not raise it, an
action does, and an ``except PgstaskError`` around a client call in an action must not swallow a
``Snooze`` raised by a helper inside it. It is an ``Exception`` (as the retry exceptions of
Celery, arq and dramatiq are), so an action that catches exceptions broadly must re-raise it, as
it re-raises ``TaskStopped``.
"""

from __future__ import annotations

import datetime as dt
import math
import reprlib
from numbers import Real

#: The longest delay an action may ask for with ``Snooze`` or ``Retry``, and the longest
#: ``retry_max_delay`` a worker may set, in seconds: 366 days. Longer is a mistake (minutes
#: given as seconds twice over), and it keeps ``start_at`` far from the end of time.
MAX_DELAY = 366 * 86400.0

# Values in messages, shortened (an int of 400 digits, a list of thousands of names).
_shown = reprlib.Repr()
_shown.maxother = _shown.maxstring = 80
_shown.maxlong = 40


def shown(value: object) -> str:
    """``repr(value)``, shortened for a message."""
    return _shown.repr(value)


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


class InvalidOptionsError(InvalidTaskError):
    """A task's data does not match the options model its action declares (docs/workers.md,
    "Typed options"). ``model`` is the model's name, ``problems`` the ``(field, message)``
    pairs, a field a dotted path (``items.2.sku``; empty for the whole object). The message
    names the data's fields, as the enqueueing side sees them: ``data.count: must be a whole
    number, not 'x'``; ``mismatch`` says the same to the action's side."""

    #: How many problems a message tells; the rest are counted.
    TOLD = 5

    def __init__(self, model: str, problems: tuple[tuple[str, str], ...]) -> None:
        self.model = model
        self.problems = problems
        super().__init__(self._told("data"))

    def __reduce__(
        self,
    ) -> tuple[type[InvalidOptionsError], tuple[str, tuple[tuple[str, str], ...]]]:
        return type(self), (self.model, self.problems)

    @property
    def mismatch(self) -> str:
        """``options do not match ImportOptions: count: must be a whole number, not 'x'``."""
        return f"options do not match {self.model}: {self._told('')}"

    def _told(self, root: str) -> str:
        parts = [
            f"{'.'.join(p for p in (root, field) if p) or 'options'}: {message}"
            for field, message in self.problems[: self.TOLD]
        ]
        if len(self.problems) > self.TOLD:
            parts.append(f"and {len(self.problems) - self.TOLD} more")
        return "; ".join(parts)


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


class InvalidWebhookError(PgstaskError):
    """A webhook was rejected (its name, URL, events, secret), or a ``notify`` setting or
    target (docs/notifications.md)."""


class WebhookNotFoundError(PgstaskError):
    """No webhook has the given name."""

    def __init__(self, name: str) -> None:
        super().__init__(f"no webhook is named {name!r} (`pgstask webhooks list` lists them)")
        self.name = name


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


class TaskControl(Exception):
    """Raised by an action to choose what becomes of its task (``Snooze``, ``Retry``); not an
    error (see the module docstring)."""


class Snooze(TaskControl):
    """Raised by an action: put the task back to pending, runnable ``seconds`` from now (by the
    database clock), without counting the attempt. It is not a failure: ``last_error`` stays as
    it was, and the retry rules of the worker do not apply. ``s_tasks.snoozes`` counts the
    snoozes of a task; the worker setting ``max_snoozes`` limits them.

    ``seconds`` is a number (or a ``timedelta``) from 0 to ``MAX_DELAY``; anything else raises
    ``TypeError`` or ``ValueError`` here, which fails the attempt like any exception of the
    action. ``message``, if given, is added to the task's message (``Snoozed until … UTC:
    message``).
    """

    def __init__(self, seconds: float | dt.timedelta, message: str | None = None) -> None:
        self.seconds = checked_delay("Snooze(seconds)", seconds)
        self.message = None if message is None else str(message)
        super().__init__(self.seconds, self.message)

    def __str__(self) -> str:
        return self.message or f"snoozed for {self.seconds:g}s"


class Retry(TaskControl):
    """Raised by an action: fail this attempt and retry the task ``delay`` seconds from now
    (exactly: no jitter), or after the worker's backoff when ``delay`` is None. The attempt
    counts: with no attempts left the task fails for good, as for any exception. The worker's
    ``retry_on``/``fail_on`` do not apply to it (it asks for a retry by name).

    ``delay`` is None, or a number (or a ``timedelta``) from 0 to ``MAX_DELAY``; anything else
    raises ``TypeError`` or ``ValueError`` here, which fails the attempt like any exception of
    the action. ``message`` is the text of the failure (``Failed: Retry: message``).
    """

    def __init__(
        self, delay: float | dt.timedelta | None = None, message: str | None = None
    ) -> None:
        self.delay = None if delay is None else checked_delay("Retry(delay)", delay)
        self.message = None if message is None else str(message)
        super().__init__(self.delay, self.message)

    def __str__(self) -> str:
        if self.message:
            return self.message
        if self.delay is None:
            return "retry requested"
        return f"retry requested in {self.delay:g}s"


def checked_delay(name: str, value: object) -> float:
    """``value`` as float seconds from 0 to ``MAX_DELAY``; ``TypeError`` for what is not a number
    of seconds (a bool, a string, None), ``ValueError`` for a negative, NaN, infinite or too long
    one, each naming ``name`` and the value."""
    if isinstance(value, dt.timedelta):
        seconds = value.total_seconds()
    elif isinstance(value, Real) and not isinstance(value, bool):
        try:
            seconds = float(value)
        except OverflowError:  # an int past a double's range
            seconds = math.inf
    else:
        raise TypeError(f"{name} must be a number of seconds, not {shown(value)}")
    if not (math.isfinite(seconds) and 0.0 <= seconds <= MAX_DELAY):
        raise ValueError(
            f"{name} must be a number of seconds from 0 to {MAX_DELAY:.0f} (366 days), "
            f"not {shown(value)}"
        )
    return seconds
