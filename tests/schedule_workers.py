"""A worker with schedules, for the schedule tests only (every daemon that loads it fires them)."""

from __future__ import annotations

from typing import Any

from pgstask import BaseWorker, Task


class TickWorker(BaseWorker):
    identifier = "ticks"
    schedules = {
        "every-second": {"action": "tick", "cron": "* * * * * *", "data": {"n": 1}},
        "nightly": {"action": "tick", "cron": "0 3 * * *", "timezone": "Europe/Kyiv"},
    }

    def task_tick(self, task: Task, options: dict[str, Any]) -> None:
        """Nothing: the tests count the tasks the schedules enqueued."""
