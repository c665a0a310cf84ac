"""Workers with ``async def`` actions, for tests/test_async_actions.py.

Each action appends ``<task id> <attempt> <event>`` to ``events.log`` in ``PGSTASK_STORAGE`` (the
daemon's storage in these tests), so tests can see what an action saw, also in a daemon process.
``task_overlap`` records its running interval in ``INTERVALS`` instead (in-process daemons only).
"""

from __future__ import annotations

import asyncio
import os
import threading
import time
from collections import defaultdict
from pathlib import Path
from typing import Any

from pgstask import BaseWorker, Task

#: ``task_overlap``'s (start, end) ``time.monotonic`` intervals, by its ``group`` option.
INTERVALS: defaultdict[str, list[tuple[float, float]]] = defaultdict(list)
#: The threads ``task_overlap`` ran in, by its ``group`` option.
THREADS: defaultdict[str, set[str]] = defaultdict(set)
_STARTED: defaultdict[str, int] = defaultdict(int)


def storage() -> Path:
    return Path(os.environ.get("PGSTASK_STORAGE") or ".")


def note(task: Task, event: str) -> None:
    path = storage()
    path.mkdir(parents=True, exist_ok=True)
    with open(path / "events.log", "a", encoding="utf-8") as fh:
        fh.write(f"{task.id} {task.attempts} {event}\n")


def events(directory: Path) -> list[tuple[int, int, str]]:
    """What the actions noted, in order: (task id, attempt, event)."""
    path = directory / "events.log"
    if not path.exists():
        return []
    out = []
    for line in path.read_text(encoding="utf-8").splitlines():
        task_id, attempt, event = line.split(" ", 2)
        out.append((int(task_id), int(attempt), event))
    return out


class AsyncWorker(BaseWorker):
    identifier = "asyncs"
    title = "Async actions"

    async def task_overlap(self, task: Task, options: dict[str, Any]) -> None:
        """Await ``asyncio.sleep(0.05)``, and again until ``n`` actions of its ``group`` have
        started (at most 30 s), then record its interval."""
        group, n = str(options["group"]), int(options["n"])
        start = time.monotonic()
        THREADS[group].add(threading.current_thread().name)
        _STARTED[group] += 1  # one event loop: no lock needed
        await asyncio.sleep(0.05)
        for _ in range(600):
            if _STARTED[group] >= n:
                break
            await asyncio.sleep(0.05)
        INTERVALS[group].append((start, time.monotonic()))

    async def task_report(self, task: Task, options: dict[str, Any]) -> None:
        """Progress, a log record, then hold (reporting) until ``release-<id>`` exists, then
        finish with a result."""
        await self.push_progress(task, processed=1, total=4, message="first quarter")
        await self.log(task, "info", "async hello", n=1)
        while not (storage() / f"release-{task.id}").exists():
            await asyncio.sleep(0.02)
        await self.push_progress(task, processed=4, total=4)
        await self.mark_finished(task, result={"answer": 42}, message="async done")

    async def task_fail(self, task: Task, options: dict[str, Any]) -> None:
        note(task, "fail")
        await asyncio.sleep(0)
        raise RuntimeError("async boom")

    async def task_give_up(self, task: Task, options: dict[str, Any]) -> None:
        await self.mark_failed(task, "gave up, asynchronously")

    async def task_nothing(self, task: Task, options: dict[str, Any]) -> None:
        """Return at once: loop slots that free up faster than the producer claims."""

    async def task_wait(self, task: Task, options: dict[str, Any]) -> None:
        """Note its start, await a long sleep; note a ``CancelledError`` and let it go on."""
        note(task, "started")
        try:
            await asyncio.sleep(float(options.get("seconds", 60)))
        except asyncio.CancelledError:
            note(task, "cancelled")
            raise
        note(task, "slept")

    async def task_stubborn(self, task: Task, options: dict[str, Any]) -> None:
        """Swallow every cancellation and go on (for at most 10 s)."""
        note(task, "started")
        for _ in range(200):
            try:
                await asyncio.sleep(0.05)
            except asyncio.CancelledError:
                note(task, "swallowed")
        note(task, "gave in")


class AsyncSlowWorker(BaseWorker):
    identifier = "asyncs-slow"
    settings = {"timeout": 0.5}

    task_stubborn = AsyncWorker.task_stubborn

    async def task_wait(self, task: Task, options: dict[str, Any]) -> None:
        note(task, "started")
        try:
            await asyncio.sleep(60)
        except asyncio.CancelledError:
            note(task, "cancelled")
            raise


class MixedWorker(BaseWorker):
    """One ``def`` and one ``async def`` action."""

    identifier = "mixed"

    def task_plain(self, task: Task, options: dict[str, Any]) -> None:
        note(task, f"plain {threading.current_thread().name}")
        self.mark_finished(task, result="plain")

    async def task_fancy(self, task: Task, options: dict[str, Any]) -> None:
        note(task, f"fancy {threading.current_thread().name}")
        await asyncio.sleep(0.01)
        await self.mark_finished(task, result="fancy")
