"""Workers with hooks (docs/workers.md, "Hooks"), for tests/test_hooks.py.

Each hook appends one JSON line to ``hooks.log`` in the worker's storage directory: which hook,
the task it was given, the status the database has for the task when the hook runs, the
hook's second argument, and the process and thread it ran in. ``GATE`` holds the hook of a task
whose data says ``{"hook_gate": true}`` until a test sets it (``ENTERED`` tells that it is
waiting); ``{"hook_raises": true}`` makes the hook raise after recording.
"""

from __future__ import annotations

import json
import os
import threading
from pathlib import Path
from typing import Any, cast

from pgstask import BaseWorker, Client, Task

GATE = threading.Event()
ENTERED = threading.Event()


def hook_calls(storage: Path) -> list[dict[str, Any]]:
    """The lines the hooks wrote, in the order they ran."""
    path = storage / "hooks.log"
    if not path.exists():
        return []
    return [json.loads(line) for line in path.read_text().splitlines()]


class HookedWorker(BaseWorker):
    identifier = "hooked"
    scope = "tests"

    def task_ok(self, task: Task, options: dict[str, Any]) -> None:
        self.mark_finished(task, result={"value": options.get("value"), "pid": os.getpid()})

    def task_fail(self, task: Task, options: dict[str, Any]) -> None:
        raise RuntimeError(options.get("error", "boom"))

    def task_refuse(self, task: Task, options: dict[str, Any]) -> None:
        self.mark_failed(task, "refused")

    def task_wait(self, task: Task, options: dict[str, Any]) -> None:
        """Runs until stopped (cancelled)."""
        while True:
            self.check_cancelled(task)
            threading.Event().wait(0.02)

    def on_completed(self, task: Task, result: Any) -> None:
        self._record("on_completed", task, result)
        if task.meta.get("hook_gate"):
            ENTERED.set()
            GATE.wait(30)
            self._record("on_completed returned", task, result, read=False)
        if task.meta.get("hook_raises"):
            raise ValueError("the hook broke")

    def on_failed(self, task: Task, error: str) -> None:
        self._record("on_failed", task, error)

    def _record(self, hook: str, task: Task, argument: Any, *, read: bool = True) -> None:
        """One line; ``read``: with the status the database has now (not after the daemon
        stopped: its client is closed)."""
        stored = cast(Client, self.client).get(task.id).status if read else None
        line = {
            "hook": hook,
            "id": task.id,
            "status": task.status,
            "stored_status": stored,
            "attempts": task.attempts,
            "message": task.message,
            "argument": argument,
            "pid": os.getpid(),
            "thread": threading.current_thread().name,
        }
        self.storage.mkdir(parents=True, exist_ok=True)
        with open(self.storage / "hooks.log", "a", encoding="utf-8") as fh:
            fh.write(json.dumps(line) + "\n")


class IsolatedHookedWorker(HookedWorker):
    """The same actions and hooks; the actions run in a child process."""

    identifier = "hooked_process"
    settings = {"isolation": "process"}


class FailedOnlyWorker(BaseWorker):
    """Defines only ``on_failed``: its completions are not queued for a hook."""

    identifier = "hooked_failed_only"

    def task_ok(self, task: Task, options: dict[str, Any]) -> None:
        pass

    def on_failed(self, task: Task, error: str) -> None:
        pass
