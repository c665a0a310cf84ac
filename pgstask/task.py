"""Tasks: statuses, priorities and the row dataclass."""

from __future__ import annotations

import dataclasses
import datetime as dt
import enum
import sys
from typing import Any


class Status(enum.IntEnum):
    """A task's status, stored as a small integer (sTask's numbering plus ``cancelled``)."""

    PENDING = 10
    #: Has dependencies that have not finished (docs/workflows.md); pending once they have.
    WAITING = 20
    PREPARING = 30
    RUNNING = 50
    COMPLETED = 80
    CANCELLED = 90
    FAILED = 100

    @property
    def text(self) -> str:
        """The status as text (``pending``, ``running``, …)."""
        return self.name.lower()

    @classmethod
    def parse(cls, value: str | int) -> Status:
        """A status from its code (``50``, ``"50"``) or its text (``"running"``)."""
        if isinstance(value, int) or (isinstance(value, str) and value.isdigit()):
            return cls(int(value))
        try:
            return cls[str(value).strip().upper()]
        except KeyError:
            names = ", ".join(s.text for s in cls)
            raise ValueError(f"unknown status {value!r}; use one of {names}") from None


INCOMPLETE = frozenset({Status.PENDING, Status.WAITING, Status.PREPARING, Status.RUNNING})
FINISHED = frozenset({Status.COMPLETED, Status.CANCELLED, Status.FAILED})


def status_text(code: int) -> str:
    """The text of a status code; ``unknown`` for a code pgstask does not define."""
    try:
        return Status(code).text
    except ValueError:
        return "unknown"


PRIORITIES = ("high", "normal", "low")

#: One run of a task: (task id, claims). Every claim starts a new run.
RunKey = tuple[int, int]

QUEUED_MESSAGE = "Task queued"  # a new task's message (also in the SQL that inserts tasks)


#: What pgstask can read back, here and in the statement trigger of ``s_tasks`` (revision 0005):
#: timestamps a ``datetime`` holds in any time zone, meta at most this deep, numbers that fit a
#: double (an integer of thousands of digits cannot be decoded).
EARLIEST = dt.datetime(1, 1, 2, tzinfo=dt.UTC)
LATEST = dt.datetime(9999, 12, 31, tzinfo=dt.UTC)  # exclusive
MAX_META_DEPTH = 100
_MAX_NUMBER = sys.float_info.max


def timestamp_problem(value: dt.datetime) -> str | None:
    """Why a timezone-aware ``value`` cannot be stored as a task's timestamp, or None."""
    try:
        ok = EARLIEST <= value < LATEST
    except OverflowError:
        ok = False
    return None if ok else "must lie between 0001-01-02 and 9999-12-30 UTC"


def meta_problem(value: Any) -> str | None:
    """Why JSON-ready ``value`` (a task's data) could not be read back, or None."""
    stack = [(value, 1)]
    while stack:
        node, depth = stack.pop()
        if depth > MAX_META_DEPTH:
            return f"is nested more than {MAX_META_DEPTH} levels deep"
        for child in node.values() if isinstance(node, dict) else node:
            if isinstance(child, dict | list | tuple):
                stack.append((child, depth + 1))
            elif isinstance(child, int) and not -_MAX_NUMBER <= child <= _MAX_NUMBER:
                return "holds a number beyond a double's range (±1.8e308); send it as a string"
    return None


@dataclasses.dataclass(frozen=True, slots=True)
class Task:
    """One row of ``s_tasks``."""

    id: int
    identifier: str
    action: str
    status: int
    message: str | None
    started_by: int | None
    meta: dict[str, Any]
    result: Any
    start_at: dt.datetime
    started_at: dt.datetime | None
    finished_at: dt.datetime | None
    attempts: int
    max_attempts: int
    #: How many times a daemon has claimed the task; never reset. ``(id, claims)`` names one
    #: run: the writes of a run match it, so an earlier run's outcome never lands on a later one.
    claims: int
    #: How many times an action of the task raised ``Snooze`` (each time the attempt was given
    #: back); reset with the attempts by a retry (``Client.retry``).
    snoozes: int
    priority: str
    progress: int
    daemon_id: Any
    last_error: str | None
    dedupe_key: str | None
    peak_memory: int | None
    created_at: dt.datetime
    updated_at: dt.datetime
    #: The key that per-key limits and fair sharing group the task by (docs/limits.md).
    concurrency_key: str | None = None
    #: The tasks this one depends on, as created (docs/workflows.md); None: none.
    depends_on: list[int] | None = None
    #: What a parent that failed or was cancelled does to this task: ``cancel`` or ``run``;
    #: None: the worker's ``on_parent_failure`` setting, else ``cancel``.
    on_parent_failure: str | None = None
    #: While waiting (status 20): how many of its parents have not finished.
    waiting_for: int = 0
    #: Some task depends on this one.
    has_children: bool = False
    #: Someone waits for this task's end (``Client.wait``): its end sends a notification.
    awaited: bool = False
    #: The task's own notification targets, besides its worker's ``notify`` setting
    #: (docs/notifications.md): ``{"webhooks": [...], "emails": [...], "on": [...]}``.
    notify: dict[str, Any] | None = None
    #: The W3C trace context of the code that created the task, as stored (revision 0012,
    #: docs/opentelemetry.md): ``{"traceparent": ..., "tracestate": ...}``; None: none.
    trace_context: Any = None

    @property
    def status_text(self) -> str:
        """The status as text; ``unknown`` for a code pgstask does not define."""
        return status_text(self.status)

    @property
    def run_key(self) -> RunKey:
        """``(id, claims)``: the run this row was claimed for."""
        return (self.id, self.claims)

    @property
    def is_pending(self) -> bool:
        """Waiting to be claimed (status 10)."""
        return self.status == Status.PENDING

    @property
    def is_waiting(self) -> bool:
        """Waiting for its dependencies to finish (status 20)."""
        return self.status == Status.WAITING

    @property
    def is_running(self) -> bool:
        """Claimed and under way (preparing or running)."""
        return self.status in (Status.PREPARING, Status.RUNNING)

    @property
    def is_finished(self) -> bool:
        """Completed, cancelled or failed: it will not run again unless retried."""
        return self.status in FINISHED

    @property
    def duration(self) -> float | None:
        """Seconds from start to finish (or to now while running); None before the start."""
        if self.started_at is None:
            return None
        end = self.finished_at or dt.datetime.now(dt.UTC)
        return (end - self.started_at).total_seconds()

    @property
    def options(self) -> dict[str, Any]:
        """The action's options: sTask passes ``meta`` to the action as ``options``."""
        return self.meta

    def brief(self) -> dict[str, Any]:
        """What names the task as another's parent or child in JSON: its id, worker, action and
        status."""
        return {
            "id": self.id,
            "identifier": self.identifier,
            "action": self.action,
            "status": int(self.status),
            "status_text": self.status_text,
        }

    def to_dict(self) -> dict[str, Any]:
        """A JSON-ready dict of the row, with ``status_text`` added."""
        out: dict[str, Any] = {}
        for field in dataclasses.fields(self):
            value = getattr(self, field.name)
            if isinstance(value, dt.datetime):
                value = value.isoformat()
            elif field.name == "daemon_id" and value is not None:
                value = str(value)
            out[field.name] = value
        out["status_text"] = self.status_text
        return out


TASK_COLUMNS = tuple(f.name for f in dataclasses.fields(Task))


@dataclasses.dataclass(frozen=True, slots=True)
class UnreadableTask(Task):
    """A row stored by other means (plain SQL, an older pgstask) that Python cannot read as it
    is: a timestamp out of ``datetime``'s range, or ``meta`` too deep or with a number too large
    to decode. Lists and lookups show it with what could not be read replaced (timestamps
    clamped to ``datetime.min``/``max``, ``meta``/``result`` as ``{"unreadable": …}``) and
    ``problem`` saying what; a daemon that claims one fails it with that message."""

    problem: str = ""
