"""Workers with flow-control settings, for the limit tests only.

Each action records when it ran, by the database clock, in the table ``limit_runs`` that the
test creates (the DSN comes in the task's options), so that the test can check how many ran at
once: an action starts after its claim committed and ends before its completion does, so these
intervals overlap no more than the claims allowed.
"""

from __future__ import annotations

import time
from typing import Any

import psycopg

from pgstask import BaseWorker, Task


def _record(task: Task, options: dict[str, Any]) -> None:
    with psycopg.connect(options["dsn"], autocommit=True) as conn:
        conn.execute(
            "INSERT INTO limit_runs (task_id, identifier, key, started) "
            "VALUES (%s, %s, %s, clock_timestamp())",
            (task.id, task.identifier, task.concurrency_key),
        )
        time.sleep(float(options.get("seconds", 0.2)))
        conn.execute(
            "UPDATE limit_runs SET ended = clock_timestamp() WHERE task_id = %s", (task.id,)
        )


class MaxRunningWorker(BaseWorker):
    identifier = "limited-total"
    settings = {"max_running": 2}

    def task_work(self, task: Task, options: dict[str, Any]) -> None:
        """Record the run; at most two at once across every daemon."""
        _record(task, options)


class PerKeyWorker(BaseWorker):
    identifier = "limited-per-key"
    settings = {"max_running_per_key": 1, "max_running": 3}

    def task_work(self, task: Task, options: dict[str, Any]) -> None:
        """Record the run; one per concurrency key, three in all."""
        _record(task, options)


class RatedWorker(BaseWorker):
    identifier = "limited-rate"
    settings = {"rate_limit": {"limit": 3, "per": 1}}

    def task_work(self, task: Task, options: dict[str, Any]) -> None:
        """Record the run; three starts a second."""
        _record(task, options)


class FairWorker(BaseWorker):
    identifier = "limited-fair"
    settings = {"fair_share": True}

    def task_work(self, task: Task, options: dict[str, Any]) -> None:
        """Record the run."""
        _record(task, options)
