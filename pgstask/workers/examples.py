"""Example workers, installed with pgstask (entry points ``demo`` and ``report``).

They are what the README's first command runs, and what the tour enqueues. Deactivate them
(``pgstask workers deactivate demo``) if you do not want them on production daemons.
"""

from __future__ import annotations

import csv
import time
from typing import Any

from pgstask.task import Task
from pgstask.workers.base import BaseWorker


class DemoWorker(BaseWorker):
    """Small actions to watch a queue work: count with progress, fail on purpose, do nothing."""

    identifier = "demo"
    scope = "examples"
    title = "Demo"
    description = "Counts slowly with progress, fails on request, or does nothing."
    icon = "play"
    settings = {"timeout": 600}

    def task_count(self, task: Task, options: dict[str, Any]) -> None:
        """Count to ``options["to"]`` (default 20), ``options["delay"]`` seconds per step."""
        to = int(options.get("to", 20))
        delay = float(options.get("delay", 0.1))
        for i in range(1, to + 1):
            time.sleep(delay)
            self.push_progress(task, processed=i, total=to, message=f"Counted {i} of {to}")
        self.mark_finished(task, result={"counted": to}, message=f"Counted to {to}")

    def task_fail(self, task: Task, options: dict[str, Any]) -> None:
        """Raise, so the task is retried with backoff and then fails."""
        raise RuntimeError(options.get("error", "failing on purpose"))

    def task_noop(self, task: Task, options: dict[str, Any]) -> None:
        """Do nothing (benchmarks use it)."""


class ReportWorker(BaseWorker):
    """Writes a CSV report into ``results/`` of the storage directory (``PGSTASK_STORAGE``) and
    finishes with its path."""

    identifier = "report"
    scope = "examples"
    title = "Reports"
    description = "Exports a CSV report (rows given by options['rows'])."
    icon = "file"

    def task_export(self, task: Task, options: dict[str, Any]) -> None:
        """Write ``options["rows"]`` (default 100) rows of squares to a CSV file and store it as
        the task's result file."""
        rows = int(options.get("rows", 100))
        directory = self.storage / "results"
        directory.mkdir(parents=True, exist_ok=True)
        path = directory / f"report-{task.id}.csv"
        with open(path, "w", newline="", encoding="utf-8") as fh:
            writer = csv.writer(fh)
            writer.writerow(["row", "square"])
            for i in range(1, rows + 1):
                writer.writerow([i, i * i])
                if i % 100 == 0 or i == rows:
                    self.push_progress(task, processed=i, total=rows, message=f"{i} rows written")
        self.log(task, "info", "report written", path=str(path), rows=rows)
        stored = self.store_result_file(task, path)  # downloadable from every host
        self.mark_finished(
            task, result={**stored, "path": str(path)}, message=f"Exported {rows} rows"
        )
