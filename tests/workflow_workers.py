"""Workers of the workflow tests (imported through PGSTASK_WORKERS=tests.workflow_workers).

Each action records its run, by the database clock, in the table ``flow_runs`` that the test
creates (the DSN comes in the task's options): an action starts after its claim committed and
ends before its completion does, so a child's interval starting after its parents' ended shows
the order the dependencies imposed.
"""

from __future__ import annotations

from typing import Any

import psycopg
from psycopg.types.json import Jsonb

from pgstask import BaseWorker, Task


class FlowWorker(BaseWorker):
    identifier = "flow"

    def task_step(self, task: Task, options: dict[str, Any]) -> None:
        """Record the run with the parents' results it saw; complete with its name and those
        results, or fail when ``fail`` is set."""
        seen = {str(k): v for k, v in self.parent_results(task).items()}
        outcomes = {str(p.id): p.status_text for p in self.parents(task)}
        with psycopg.connect(options["dsn"], autocommit=True) as conn:
            conn.execute(
                "INSERT INTO flow_runs (task_id, name, seen, outcomes, started)"
                " VALUES (%s, %s, %s, %s, clock_timestamp())",
                (task.id, options.get("name"), Jsonb(seen), Jsonb(outcomes)),
            )
            if options.get("fail"):
                conn.execute(
                    "UPDATE flow_runs SET ended = clock_timestamp() WHERE task_id = %s",
                    (task.id,),
                )
                raise RuntimeError(f"{options.get('name')} failed on purpose")
            conn.execute(
                "UPDATE flow_runs SET ended = clock_timestamp() WHERE task_id = %s", (task.id,)
            )
        self.mark_finished(task, result={"name": options.get("name"), "seen": seen})

    def task_member(self, task: Task, options: dict[str, Any]) -> None:
        """A member of a group: completes with its index, or fails when ``fail`` is set."""
        if options.get("fail"):
            raise RuntimeError("member failed on purpose")
        self.mark_finished(task, result=options.get("i"))
