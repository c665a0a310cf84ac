"""Tasks: statuses, priorities and the row dataclass."""

from __future__ import annotations

import dataclasses
import datetime as dt
import enum
from typing import Any


class Status(enum.IntEnum):
    """A task's status, stored as a small integer (sTask's numbering plus ``cancelled``)."""

    PENDING = 10
    PREPARING = 30
    RUNNING = 50
    COMPLETED = 80
    CANCELLED = 90
    FAILED = 100

    @property
    def text(self) -> str:
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


INCOMPLETE = frozenset({Status.PENDING, Status.PREPARING, Status.RUNNING})
FINISHED = frozenset({Status.COMPLETED, Status.CANCELLED, Status.FAILED})


def status_text(code: int) -> str:
    """The text of a status code; ``unknown`` for a code pgstask does not define."""
    try:
        return Status(code).text
    except ValueError:
        return "unknown"


PRIORITIES = ("high", "normal", "low")

QUEUED_MESSAGE = "Task queued"  # a new task's message (also in the SQL that inserts tasks)


def check_priority(priority: str) -> str:
    if priority not in PRIORITIES:
        raise ValueError(f"unknown priority {priority!r}; use high, normal or low")
    return priority


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
    priority: str
    progress: int
    daemon_id: Any
    last_error: str | None
    dedupe_key: str | None
    peak_memory: int | None
    created_at: dt.datetime
    updated_at: dt.datetime

    @property
    def status_text(self) -> str:
        return status_text(self.status)

    @property
    def is_pending(self) -> bool:
        return self.status == Status.PENDING

    @property
    def is_running(self) -> bool:
        return self.status in (Status.PREPARING, Status.RUNNING)

    @property
    def is_finished(self) -> bool:
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
