"""Workers of the fault tests (``tests/test_faults.py``), apart from the sample workers so that
the other tests' lists of workers stay as they are. Each run appends
``<task id> <claims> <start> <end>`` (wall-clock seconds) to ``spans.log`` in PGSTASK_STORAGE."""

from __future__ import annotations

import time
from pathlib import Path
from typing import Any

from pgstask import BaseWorker, Task
from tests.sample_workers import storage


def spans(settings_storage: Path) -> list[tuple[int, int, float, float]]:
    """What ``RunsWorker`` recorded: (task id, claims, start, end) per run, in wall-clock time."""
    path = settings_storage / "spans.log"
    if not path.exists():
        return []
    out = []
    for line in path.read_text().splitlines():
        task_id, claims, start, end = line.split()
        out.append((int(task_id), int(claims), float(start), float(end)))
    return out


class RunsWorker(BaseWorker):
    """Actions that record when each run of a task started and ended (``spans.log``)."""

    identifier = "runs"

    def _span(self, task: Task, started: float) -> None:
        path = storage()
        path.mkdir(parents=True, exist_ok=True)
        with open(path / "spans.log", "a", encoding="utf-8") as fh:
            fh.write(f"{task.id} {task.claims} {started} {time.time()}\n")

    def task_busy_per_claim(self, task: Task, options: dict[str, Any]) -> None:
        """Sleep ``seconds[claims - 1]`` (the last one for later runs), never reporting."""
        started = time.time()
        try:
            seconds = options["seconds"]
            time.sleep(float(seconds[min(task.claims, len(seconds)) - 1]))
        finally:
            self._span(task, started)

    def task_steady(self, task: Task, options: dict[str, Any]) -> None:
        """Report progress every 20 ms for ``seconds`` (stops at once when asked to)."""
        started = time.time()
        try:
            deadline = time.monotonic() + float(options.get("seconds", 1.0))
            while time.monotonic() < deadline:
                self.push_progress(task, message="steady")
                time.sleep(0.02)
        finally:
            self._span(task, started)


class TimedRunsWorker(RunsWorker):
    """``RunsWorker`` under a 0.5 s timeout."""

    identifier = "timed_runs"
    settings = {"timeout": 0.5}


class Unprintable:
    """A message whose ``str()`` raises: a worker bug the runner does not expect."""

    def __str__(self) -> str:
        raise RuntimeError("no text")


class BrokenWorker(BaseWorker):
    """An action that makes the runner itself fail while it ends the run."""

    identifier = "broken"

    def task_unprintable(self, task: Task, options: dict[str, Any]) -> None:
        self.mark_finished(task, message=Unprintable())  # type: ignore[arg-type]
