"""The worker that pgstask daemons run in the benchmark (loaded with PGSTASK_WORKERS=bench_worker).

- ``noop`` does nothing but note its task's id; when the daemon exits, the ids noted give one
  JSON line on stdout (``invocations``, ``distinct``), the same report the peers' workers give.
- ``wake`` appends ``<seq> <time.time()>`` to the file named by PGSTASK_BENCH_WAKE_FILE as the
  first thing it does (the wake-latency scenario).
- ``loop`` and ``progress`` run the same loop over ``options["n"]`` items, the second calling
  ``push_progress`` for each, and finish with the loop's duration as their result.
"""

from __future__ import annotations

import atexit
import json
import os
import sys
import time
from typing import Any, TextIO

from pgstask import BaseWorker, Task

_invoked: list[int] = []
_wake: TextIO | None = None


class BenchWorker(BaseWorker):
    identifier = "bench"
    scope = "bench"
    title = "Benchmark"
    description = "Actions of bench/run.py: no-op, wake-up probe, progress loop."

    def task_noop(self, task: Task, options: dict[str, Any]) -> None:
        _invoked.append(task.id)  # list.append is atomic: actions run in several threads

    def task_wake(self, task: Task, options: dict[str, Any]) -> None:
        started = time.time()
        global _wake
        if _wake is None:
            _wake = open(os.environ["PGSTASK_BENCH_WAKE_FILE"], "a", encoding="utf-8")  # noqa: SIM115
        _wake.write(f"{options['seq']} {started!r}\n")
        _wake.flush()

    def task_loop(self, task: Task, options: dict[str, Any]) -> None:
        n, total, start = int(options["n"]), 0, time.perf_counter()
        for i in range(1, n + 1):
            total += i
        self.mark_finished(task, result={"seconds": time.perf_counter() - start, "sum": total})

    def task_progress(self, task: Task, options: dict[str, Any]) -> None:
        n, total, start = int(options["n"]), 0, time.perf_counter()
        for i in range(1, n + 1):
            total += i
            self.push_progress(task, processed=i, total=n)
        self.mark_finished(task, result={"seconds": time.perf_counter() - start, "sum": total})


@atexit.register
def _report() -> None:
    report = {"invocations": len(_invoked), "distinct": len(set(_invoked))}
    sys.stdout.write(json.dumps(report) + "\n")
    sys.stdout.flush()
