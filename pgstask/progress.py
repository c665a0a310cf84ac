"""Progress of running tasks: derived fields, coalesced writes, snapshots and their cleanup.

A task's live progress is kept in two places, both written by ``ProgressTracker.write``:

- the UNLOGGED ``s_task_progress`` row (UPSERT), readable from any host; a crash or failover
  empties that table, so readers treat a missing row as "unknown";
- an atomic JSON snapshot ``{storage}/{id}.json`` (temp file + rename), sTask's format.

``push`` is cheap enough to call for every item: it updates fields in memory and writes at most
every ``interval`` seconds; the first push and the final state always write. The
durable final state (100 % and the final message) goes to ``s_tasks`` with the completion.
"""

from __future__ import annotations

import json
import os
import threading
import time
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from pgstask import queries
from pgstask.db import Conn
from pgstask.task import Status, status_text

GC_MARKER = ".gc_progress"
SNAPSHOT_MAX_AGE = 24 * 3600.0
TEMP_MAX_AGE = 3600.0


def format_eta(seconds: float | None) -> str:
    """``2m 10s`` style; ``—`` when unknown (sTask's placeholder)."""
    if seconds is None:
        return "—"
    total = max(0, round(seconds))
    hours, rest = divmod(total, 3600)
    minutes, secs = divmod(rest, 60)
    if hours:
        return f"{hours}h {minutes}m"
    if minutes:
        return f"{minutes}m {secs}s"
    return f"{secs}s"


@dataclass(slots=True)
class ProgressState:
    """What a task reported so far; fields it was not given keep their earlier values."""

    task_id: int
    identifier: str
    action: str
    status: int = Status.RUNNING
    progress: int = 0
    processed: int | None = None
    total: int | None = None
    eta: float | None = None
    message: str | None = None
    result: Any = None

    def snapshot(self) -> dict[str, Any]:
        """The state as its JSON snapshot file holds it (sTask's format), stamped with the time
        now."""
        return {
            "id": self.task_id,
            "identifier": self.identifier,
            "action": self.action,
            "status": status_text(self.status),
            "status_code": self.status,
            "progress": self.progress,
            "processed": self.processed,
            "total": self.total,
            "eta": self.eta,
            "eta_text": format_eta(self.eta),
            "message": self.message or "",
            "result": self.result,
            "updated_at": time.time(),
        }


Writer = Callable[[ProgressState], None]


@dataclass(slots=True)
class ProgressTracker:
    """Progress of one running task; owned by the thread that runs its action."""

    state: ProgressState
    write_row: Writer
    storage: Path
    interval: float = 0.25
    clock: Callable[[], float] = time.monotonic
    started: float = field(default=0.0)
    _last_write: float = field(default=float("-inf"))
    _dirty: bool = field(default=False)

    def __post_init__(self) -> None:
        self.started = self.clock()

    def push(
        self,
        *,
        progress: float | None = None,
        processed: int | None = None,
        total: int | None = None,
        eta: float | None = None,
        message: str | None = None,
    ) -> None:
        """Record what the action reports: each given field replaces its last value, and
        ``progress`` and ``eta`` are derived from ``processed``/``total`` and the time elapsed
        unless given. Written at most every ``interval`` seconds, the first push at once; a value
        out of range is a ``ValueError``."""
        state = self.state
        if processed is not None:
            state.processed = _count("processed", processed)
        if total is not None:
            state.total = _count("total", total)
        if progress is not None:
            state.progress = _percent(progress)
        elif processed is not None and state.total:
            state.progress = min(100, state.processed * 100 // state.total)  # type: ignore[operator]
        if eta is not None:
            if not isinstance(eta, int | float) or eta < 0:
                raise ValueError(f"eta is a number of seconds >= 0, not {eta!r}")
            state.eta = float(eta)
        elif processed is not None and state.total:
            state.eta = self._derived_eta()
        if message is not None:
            state.message = str(message)
        self._dirty = True
        now = self.clock()
        if now - self._last_write >= self.interval:
            self.flush(now)

    def _derived_eta(self) -> float | None:
        done, total = self.state.processed or 0, self.state.total or 0
        elapsed = self.clock() - self.started
        if done <= 0 or elapsed <= 0:
            return None
        return max(0.0, (total - done) * elapsed / done)

    def flush(self, now: float | None = None) -> None:
        """Write the current state to the progress row and the snapshot, if it changed."""
        if not self._dirty:
            return
        self._dirty = False
        self._last_write = self.clock() if now is None else now
        self.write_row(self.state)
        write_snapshot(self.storage, self.state.task_id, self.state.snapshot())

    def mirror(self, fields: Mapping[str, Any]) -> None:
        """Take over the state another process reported (the child of a process-isolated
        action writes its own progress; the runner keeps this copy for the final snapshot)."""
        self.state = ProgressState(**fields)
        self._dirty = False
        self._last_write = self.clock()

    @property
    def touched(self) -> bool:
        """Whether the action ever reported progress (then a final snapshot is written)."""
        return self._last_write != float("-inf") or self._dirty

    def finish(self, status: int, message: str | None, result: Any = None) -> None:
        """The final snapshot (the database side is written with the completion)."""
        if status == Status.COMPLETED:
            self.state.progress = 100
            self.state.eta = 0.0
            if self.state.total is not None:
                self.state.processed = self.state.total
        self.state.status = status
        self.state.message = message
        self.state.result = result
        write_snapshot(self.storage, self.state.task_id, self.state.snapshot())


def upsert(conn: Conn, states: Sequence[ProgressState]) -> None:
    """Write the progress rows of ``states`` (one statement)."""
    queries.progress_upsert_many(
        conn,
        task_ids=[s.task_id for s in states],
        statuses=[s.status for s in states],
        progress=[s.progress for s in states],
        processed=[s.processed for s in states],
        totals=[s.total for s in states],
        etas=[s.eta for s in states],
        messages=[s.message for s in states],
    )


def _count(name: str, value: int) -> int:
    if isinstance(value, bool) or not isinstance(value, int) or value < 0:
        raise ValueError(f"{name} must be a whole number >= 0, not {value!r}")
    return value


def _percent(value: float) -> int:
    if isinstance(value, bool) or not isinstance(value, int | float) or not 0 <= value <= 100:
        raise ValueError(f"progress is a percentage between 0 and 100, not {value!r}")
    return int(value)


_write_lock = threading.Lock()


def write_snapshot(storage: Path, task_id: int, data: dict[str, Any]) -> None:
    """Atomically replace ``{storage}/{task_id}.json`` (temp file in the same directory, rename)."""
    storage.mkdir(parents=True, exist_ok=True)
    target = storage / f"{task_id}.json"
    temp = storage / f".~{task_id}_{os.getpid()}_{threading.get_ident()}.json"
    temp.write_text(json.dumps(data, ensure_ascii=False, default=str), encoding="utf-8")
    os.replace(temp, target)


def read_snapshot(storage: Path, task_id: int) -> dict[str, Any] | None:
    """The snapshot of a task, or None when there is none (or it is unreadable)."""
    try:
        data = json.loads((storage / f"{task_id}.json").read_text(encoding="utf-8"))
    except (OSError, ValueError):
        return None
    return data if isinstance(data, dict) else None


def collect_garbage(
    storage: Path,
    *,
    now: float | None = None,
    every: float = 3600.0,
    force: bool = False,
    log_max_age: float | None = None,
) -> int:
    """Delete snapshots older than 24 h, stray temp files older than 1 h and, with
    ``log_max_age`` (seconds), task log files (``{id}.log``) not written to for that long.

    Runs at most once per ``every`` seconds across all processes sharing ``storage``, throttled
    by the mtime of the ``.gc_progress`` marker (sTask's scheme). Returns the files deleted.
    """
    if not storage.is_dir():
        return 0
    now = time.time() if now is None else now
    marker = storage / GC_MARKER
    try:
        if not force and now - marker.stat().st_mtime < every:
            return 0
    except FileNotFoundError:
        pass
    marker.touch()
    os.utime(marker, (now, now))
    deleted = 0
    for entry in os.scandir(storage):
        name = entry.name
        if name.endswith(".json"):
            max_age: float | None = TEMP_MAX_AGE if name.startswith(".~") else SNAPSHOT_MAX_AGE
        elif name.endswith(".log") and name[:-4].isdigit():
            max_age = log_max_age
        else:
            continue
        try:
            if max_age is not None and entry.is_file() and now - entry.stat().st_mtime > max_age:
                os.unlink(entry.path)
                deleted += 1
        except FileNotFoundError:
            continue
    return deleted
