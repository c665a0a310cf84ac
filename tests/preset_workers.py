"""A worker whose schedule starts a preset, for the preset tests only (the preset must exist
before a daemon that loads it starts)."""

from __future__ import annotations

from typing import Any

from pgstask import BaseWorker, Task


class DigestWorker(BaseWorker):
    identifier = "digest"
    schedules = {
        "nightly-digest": {"preset": "digest-daily", "cron": "0 3 * * *", "data": {"n": 2}},
    }

    def task_send(self, task: Task, options: dict[str, Any]) -> None:
        """Nothing: the tests look at the tasks the schedule enqueued."""
