"""Workers the test suite runs (imported through PGSTASK_WORKERS=tests.sample_workers).

Every action appends ``<task id> <attempt> <pid>`` to ``executions.log`` in the worker's storage
setting (or the current directory), so tests can count executions across processes.
"""

from __future__ import annotations

import os
import time
from pathlib import Path
from typing import Any

from pgstask import BaseWorker, Task


def record(worker: BaseWorker, task: Task) -> None:
    path = Path(os.environ.get("PGSTASK_STORAGE") or worker.settings.get("record_dir") or ".")
    path.mkdir(parents=True, exist_ok=True)
    with open(path / "executions.log", "a", encoding="utf-8") as fh:
        fh.write(f"{task.id} {task.attempts} {os.getpid()}\n")


class SampleWorker(BaseWorker):
    identifier = "sample"
    scope = "tests"
    title = "Sample"
    description = "Actions for the test suite"
    settings = {"greeting": "hello", "record_dir": None}

    def task_noop(self, task: Task, options: dict[str, Any]) -> None:
        record(self, task)

    def task_sync_stock(self, task: Task, options: dict[str, Any]) -> None:
        record(self, task)
        self.mark_finished(task, result="synced")

    def task_sleep(self, task: Task, options: dict[str, Any]) -> None:
        record(self, task)
        deadline = time.monotonic() + float(options.get("seconds", 1.0))
        while time.monotonic() < deadline:
            self.push_progress(task, message="sleeping")
            time.sleep(0.02)

    def task_busy(self, task: Task, options: dict[str, Any]) -> None:
        """Sleep without ever reporting progress (cannot be stopped early)."""
        record(self, task)
        time.sleep(float(options.get("seconds", 1.0)))

    def task_steps(self, task: Task, options: dict[str, Any]) -> None:
        record(self, task)
        total = int(options.get("total", 10))
        for i in range(1, total + 1):
            self.push_progress(task, processed=i, total=total, message=f"step {i}")
        self.mark_finished(task, result={"steps": total}, message=f"did {total} steps")

    def task_fail(self, task: Task, options: dict[str, Any]) -> None:
        record(self, task)
        raise RuntimeError(options.get("error", "boom"))

    def task_give_up(self, task: Task, options: dict[str, Any]) -> None:
        record(self, task)
        self.mark_failed(task, "gave up on purpose")

    def task_settings(self, task: Task, options: dict[str, Any]) -> None:
        self.mark_finished(task, result=dict(self.settings))

    def task_unstorable(self, task: Task, options: dict[str, Any]) -> None:
        """What PostgreSQL cannot store: a NaN or a NUL in the result, NUL in texts."""
        kind = options["kind"]
        if kind == "nan":
            self.mark_finished(task, result={"ratio": float("nan")})
        elif kind == "nul result":
            self.mark_finished(task, result="a\x00b")
        elif kind == "nul message":
            self.mark_finished(task, message="done\x00!")
        elif kind == "nul error":
            raise ValueError("bad\x00byte")
        elif kind == "backslash text":  # the six characters \u0000: ordinary text
            self.mark_finished(task, result="\\u0000")
        elif kind == "surrogate result":  # a file name read with surrogateescape
            self.mark_finished(task, result={"file": "caf\udce9.txt"})
        elif kind == "surrogate message":
            self.mark_finished(task, message="read caf\udce9.txt")
        elif kind == "surrogate error":
            raise ValueError("cannot read caf\udce9.txt")
        elif kind == "number message":
            self.mark_finished(task, message=42)  # type: ignore[arg-type]

    def task_log(self, task: Task, options: dict[str, Any]) -> None:
        self.log(task, "info", "first", n=1)
        self.log(task, "warning", "second")
        self.log(task, "error", "third", reason="test")

    def task_chain(self, task: Task, options: dict[str, Any]) -> None:
        """Enqueue a follow-up task through the worker's own client (the daemon's database)."""
        follow_up = self.create_task("noop", {"after": task.id})
        self.mark_finished(task, result={"follow_up": follow_up.id})

    def task_count_lines(self, task: Task, options: dict[str, Any]) -> None:
        """Read the uploaded file (``uploaded_file_id``) wherever it was uploaded."""
        path = self.fetch_file(options["uploaded_file_id"])
        self.mark_finished(task, result={"lines": len(path.read_text().splitlines())})

    def task_export(self, task: Task, options: dict[str, Any]) -> None:
        """Write a file and store it as the result (downloadable from any host)."""
        path = self.storage / f"export-{task.id}.csv"
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text(options.get("text", "a,b\n1,2\n"), encoding="utf-8")
        self.mark_finished(task, result=self.store_result_file(task, path, options.get("name")))

    def task_phases(self, task: Task, options: dict[str, Any]) -> None:
        """Preparing until ``{storage}/go-{id}`` exists, then running until ``done-{id}``."""
        self.mark_preparing(task, "loading the catalogue")
        while not (self.storage / f"go-{task.id}").exists():
            self.check_cancelled(task)
            time.sleep(0.02)
        self.mark_running(task, "importing")
        while not (self.storage / f"done-{task.id}").exists():
            self.check_cancelled(task)
            time.sleep(0.02)

    def task_interrupt(self, task: Task, options: dict[str, Any]) -> None:
        record(self, task)
        raise KeyboardInterrupt("not an Exception")


class SlowWorker(BaseWorker):
    identifier = "slow"
    settings = {"timeout": 0.5}

    def task_spin(self, task: Task, options: dict[str, Any]) -> None:
        record(self, task)
        while True:
            self.push_progress(task, message="spinning")
            time.sleep(0.02)


def storage() -> Path:
    return Path(os.environ.get("PGSTASK_STORAGE") or ".")


class IsolatedWorker(BaseWorker):
    """Actions that run in a child process (``isolation: "process"``)."""

    identifier = "isolated"
    settings = {"isolation": "process"}

    def task_steps(self, task: Task, options: dict[str, Any]) -> None:
        """Report ``total`` steps, log, then hold (reporting) until ``release-<id>`` exists."""
        record(self, task)
        total = int(options.get("total", 5))
        for i in range(1, total + 1):
            self.push_progress(task, processed=i, total=total, message=f"step {i}")
        self.log(task, "info", "steps done", pid=os.getpid())
        release = storage() / f"release-{task.id}"
        while options.get("hold") and not release.exists():
            self.push_progress(task, message="waiting")
            time.sleep(0.02)
        self.mark_finished(task, result={"steps": total}, message=f"did {total} steps")

    def task_fail(self, task: Task, options: dict[str, Any]) -> None:
        record(self, task)
        raise RuntimeError("boom in a child")

    def task_exit(self, task: Task, options: dict[str, Any]) -> None:
        record(self, task)
        os._exit(3)

    def task_sleep(self, task: Task, options: dict[str, Any]) -> None:
        record(self, task)
        deadline = time.monotonic() + float(options.get("seconds", 1.0))
        while time.monotonic() < deadline:
            self.push_progress(task, message="sleeping")
            time.sleep(0.02)

    def task_busy(self, task: Task, options: dict[str, Any]) -> None:
        """Sleep without ever reporting progress (only a kill stops it early)."""
        record(self, task)
        time.sleep(float(options.get("seconds", 1.0)))

    def task_allocate(self, task: Task, options: dict[str, Any]) -> None:
        """Hold ``mb`` MiB (every page written) while the action runs."""
        block = bytearray(b"\x01") * (int(options.get("mb", 100)) * 2**20)
        self.mark_finished(task, result=len(block))

    def task_spawn(self, task: Task, options: dict[str, Any]) -> None:
        """Enqueue a ``steps`` task from the child (``create_task``)."""
        child = self.create_task("steps", {"total": 2})
        self.mark_finished(task, result=child.id)


class IsolatedTimeoutWorker(BaseWorker):
    """A process-isolated action that never reports, under a 1 s timeout."""

    identifier = "isolated_timeout"
    settings = {"isolation": "process", "timeout": 1}

    def task_hang(self, task: Task, options: dict[str, Any]) -> None:
        record(self, task)
        while True:
            time.sleep(0.05)
