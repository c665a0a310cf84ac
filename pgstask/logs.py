"""Per-task log records: rows of ``s_task_logs`` (readable from any host) and ``{id}.log``.

The file keeps sTask's v1 line format, ``[timestamp] [LEVEL] message {context as JSON}``, so
the same records can be tailed on the host that ran the task.
"""

from __future__ import annotations

import datetime as dt
import json
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from psycopg.types.json import Jsonb

from pgstask import queries, telemetry
from pgstask.db import Conn, storable, storable_json

LEVELS = ("debug", "info", "warning", "error", "critical")


def check_level(level: str) -> str:
    """``level`` if it is one of the log levels; ``ValueError`` naming them otherwise."""
    normal = str(level).strip().lower()
    if normal == "warn":
        normal = "warning"
    if normal not in LEVELS:
        raise ValueError(f"unknown log level {level!r}; use one of {', '.join(LEVELS)}")
    return normal


@dataclass(frozen=True, slots=True)
class LogRecord:
    """One log record of a task."""

    task_id: int
    level: str
    message: str
    context: dict[str, Any] = field(default_factory=dict)
    created_at: dt.datetime = field(default_factory=lambda: dt.datetime.now(dt.UTC))

    @classmethod
    def make(cls, task_id: int, level: str, message: str, **context: Any) -> LogRecord:
        """A record stamped now, ``context`` from the keyword arguments; inside a span (an
        action's ``process`` span: docs/opentelemetry.md) with its ``trace_id`` and
        ``span_id``, unless given."""
        ids = telemetry.log_ids()
        if ids is not None:
            context = {**ids, **context}
        return cls(task_id, check_level(level), storable(message), _jsonable(context))

    def line(self) -> str:
        """The record as one line of its task's ``{id}.log`` file."""
        text = f"[{self.created_at.isoformat()}] [{self.level.upper()}] {self.message}"
        if self.context:
            text += " " + json.dumps(self.context, ensure_ascii=False, default=str)
        return text

    def to_dict(self) -> dict[str, Any]:
        """The record as JSON-ready data (the HTTP API's and the CLI's form)."""
        return {
            "task_id": self.task_id,
            "level": self.level,
            "message": self.message,
            "context": self.context,
            "created_at": self.created_at.isoformat(),
        }


def _jsonable(context: dict[str, Any]) -> dict[str, Any]:
    """The context as it will read back from jsonb: unknown objects, NaN and infinities become
    strings, NUL characters and lone surrogates U+FFFD (jsonb refuses them)."""
    text = storable_json(json.dumps(context, default=str, ensure_ascii=False))
    return dict(json.loads(text, parse_constant=str))


def write(conn: Conn, storage: Path | None, records: Sequence[LogRecord]) -> None:
    """Insert ``records`` (one statement) and append them to their tasks' log files."""
    if not records:
        return
    queries.log_insert_many(conn, **columns(records))
    if storage is not None:
        append_files(storage, records)


def columns(records: Sequence[LogRecord]) -> dict[str, list[Any]]:
    """``records`` as the parallel columns of ``log_insert_many``."""
    return {
        "task_ids": [r.task_id for r in records],
        "levels": [r.level for r in records],
        "messages": [r.message for r in records],
        "contexts": [Jsonb(r.context) for r in records],
    }


def append_files(storage: Path, records: Iterable[LogRecord]) -> None:
    """Append the records to their tasks' ``{id}.log`` files under ``storage``."""
    by_task: dict[int, list[str]] = {}
    for record in records:
        by_task.setdefault(record.task_id, []).append(record.line())
    storage.mkdir(parents=True, exist_ok=True)
    for task_id, lines in by_task.items():
        with open(storage / f"{task_id}.log", "a", encoding="utf-8") as fh:
            fh.write("\n".join(lines) + "\n")


def read(
    conn: Conn, task_id: int, *, limit: int | None = None, errors_only: bool = False
) -> list[LogRecord]:
    """A task's records, oldest first: all, the last ``limit``, or only errors."""
    check_limit(limit)
    return records_of(queries.log_list(conn, task_id=task_id, limit=limit, errors_only=errors_only))


def check_limit(limit: int | None) -> None:
    """``ValueError`` for a negative ``limit`` of ``read``."""
    if limit is not None and limit < 0:
        raise ValueError(f"limit must be >= 0, not {limit}")


def records_of(rows: Iterable[Mapping[str, Any]]) -> list[LogRecord]:
    """``log_list``'s rows as records."""
    return [
        LogRecord(r["task_id"], r["level"], r["message"], r["context"], r["created_at"])
        for r in rows
    ]


def clear(conn: Conn, storage: Path | None, task_id: int) -> int:
    """Delete a task's records and its log file; return how many records there were."""
    deleted = queries.log_delete_for_task(conn, task_id=task_id)
    remove_file(storage, task_id)
    return deleted


def remove_file(storage: Path | None, task_id: int) -> None:
    """Delete a task's ``{id}.log`` file on this host, if there is one."""
    if storage is not None:
        (storage / f"{task_id}.log").unlink(missing_ok=True)
